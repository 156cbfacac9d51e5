//! A trained network as a file: safetensors, with the tensor names and
//! layouts of PyTorch's `nn.Sequential` `state_dict` for the same network
//! (`0.weight` [out, in], `0.bias`, `2.weight`, …: activations count as
//! modules), float32, and string metadata that makes the file usable alone:
//! the architecture, the normalisation the model expects, the experiment's
//! settings, seed, epochs and versions.
//!
//! Everything is validated on reading, so a foreign or damaged file is a
//! one-line error, never a network built from the wrong numbers.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

use crate::callbacks::{VERSIONS, Versions};
use crate::config::{Experiment, MAX_PARAMETERS, Normalize, value_name};
use crate::data::Normalization;
use crate::model::{Network, layer_shapes};

/// The largest model file: the most parameters a network may have, as
/// float32, and room for the header (names, shapes, metadata).
pub const MAX_FILE_BYTES: u64 = 4 * MAX_PARAMETERS as u64 + (16 << 20);

/// What the `format` metadata says, and the layout version this reader knows.
pub const FORMAT: &str = "binclass-model";
pub const FORMAT_VERSION: &str = "1";

/// Per Linear layer: weight ([out, in], row-major) and bias, as
/// [`crate::model::initial_values`] lays them out.
pub type Layers = Vec<(Vec<f32>, Vec<f32>)>;

/// A trained network and what it takes to use it.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedModel {
    pub experiment: Experiment,
    pub seed: u64,
    pub epochs_completed: usize,
    pub normalization: Normalization,
    pub versions: Versions,
    pub layers: Layers,
}

/// PyTorch's `state_dict` names of each Linear layer's weight and bias, with
/// their shapes: layer `l` is module `2l` (an activation follows each
/// hidden layer), so a 3-hidden-layer net ends at `6.weight`.
pub fn tensor_names(e: &Experiment) -> Vec<(String, Vec<usize>)> {
    let mut names = vec![];
    for (l, (_, fan_in, fan_out)) in layer_shapes(e).iter().enumerate() {
        let (i, o) = (*fan_in as usize, *fan_out as usize);
        names.push((format!("{}.weight", 2 * l), vec![o, i]));
        names.push((format!("{}.bias", 2 * l), vec![o]));
    }
    names
}

/// A tensor's values as float32 on the CPU, row-major.
pub(crate) fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(
        t.to_kind(Kind::Float).to_device(Device::Cpu).flatten(0, -1),
    )?)
}

impl SavedModel {
    /// The layers of a trained `Network`, as they are now.
    pub fn network_layers(net: &Network) -> Result<Layers> {
        let p = net.parameters();
        p.chunks(2)
            .map(|wb| Ok((values(&wb[0].1)?, values(&wb[1].1)?)))
            .collect()
    }

    fn metadata(&self) -> Result<HashMap<String, String>> {
        let e = &self.experiment;
        let mut m: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("experiment", serde_json::to_string(e)?),
            ("seed", self.seed.to_string()),
            ("epochs_completed", self.epochs_completed.to_string()),
            ("binclass_version", self.versions.binclass.to_string()),
            ("tch_version", self.versions.tch.to_string()),
            ("libtorch_version", self.versions.libtorch.to_string()),
        ]
        .into_iter()
        .chain(declared(e))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Normalization::Standard { mean, sd } = &self.normalization {
            m.insert("normalize_mean".into(), serde_json::to_string(mean)?);
            m.insert("normalize_std".into(), serde_json::to_string(sd)?);
        }
        Ok(m)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let names = tensor_names(&self.experiment);
        let bytes: Vec<Vec<u8>> = self
            .layers
            .iter()
            .flat_map(|(w, b)| [w, b])
            .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let (have, want) = (bytes.len(), names.len());
        ensure!(
            have == want,
            "the network has {have} tensors, expected {want}"
        );
        let views = names
            .iter()
            .zip(&bytes)
            .map(|((name, shape), data)| {
                let view = TensorView::new(Dtype::F32, shape.clone(), data)
                    .map_err(|e| anyhow!("tensor {name}: {e:?}"))?;
                Ok((name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        serialize(views, self.metadata()?).context("cannot encode the model")
    }

    /// Writes the model to `path` atomically: a crash leaves the old file
    /// or the whole new one, never a torn model under the final name.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::outputs::write_atomic(path, &self.to_bytes()?)
    }

    /// The model in `path`, checked. At most [`MAX_FILE_BYTES`] are read,
    /// so a large file of another kind (or an endless stream) is refused.
    pub fn read(path: &Path) -> Result<Self> {
        let cannot = || format!("cannot read model {}", path.display());
        let mut bytes = vec![];
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
            .with_context(cannot)?;
        ensure!(
            bytes.len() as u64 <= MAX_FILE_BYTES,
            "model {}: larger than any binclass model ({} MB at most); not a model file",
            path.display(),
            MAX_FILE_BYTES / 1_000_000
        );
        Self::from_bytes(&bytes).with_context(|| format!("model {}", path.display()))
    }

    /// A model from a file's bytes: every tensor name, shape and kind, and
    /// every metadata entry, checked against the architecture it declares.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // safetensors' errors are enum variants; their Debug form is one line.
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e:?})"))?;
        let meta = Meta(
            header
                .metadata()
                .clone()
                .ok_or_else(|| anyhow!("no metadata: not a binclass model"))?,
        );
        let get = |key: &str| meta.get(key);
        if get("format")? != FORMAT {
            bail!("metadata format is `{}`, not {FORMAT}", get("format")?);
        }
        let version = get("format_version")?;
        ensure!(
            version == FORMAT_VERSION,
            "format version {version} (this binclass reads version {FORMAT_VERSION})"
        );
        let experiment = read_experiment(&meta)?;
        let normalization = read_normalization(&meta, experiment.features as usize)?;
        let layers = read_layers(&st, &experiment)?;
        let number = |key: &str| -> Result<u64> {
            get(key)?
                .parse()
                .map_err(|_| anyhow!("metadata `{key}` is not a whole number"))
        };
        Ok(SavedModel {
            seed: number("seed")?,
            epochs_completed: number("epochs_completed")? as usize,
            versions: Versions {
                binclass: get("binclass_version")?.to_string().into(),
                tch: get("tch_version")?.to_string().into(),
                libtorch: get("libtorch_version")?.to_string().into(),
            },
            experiment,
            normalization,
            layers,
        })
    }
}

/// The file's metadata entries.
struct Meta(HashMap<String, String>);

impl Meta {
    fn get(&self, key: &str) -> Result<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("metadata has no `{key}`: not a binclass model"))
    }
}

/// The experiment's settings, which must agree with the keys that also
/// describe the model (architecture, activation, init, scaling).
fn read_experiment(meta: &Meta) -> Result<Experiment> {
    let e: Experiment = serde_json::from_str(meta.get("experiment")?)
        .map_err(|err| anyhow!("metadata `experiment` is not an experiment: {err}"))?;
    e.validate()
        .map_err(|err| anyhow!("metadata `experiment`: {err}"))?;
    // The network is built from the experiment; a key saying otherwise
    // would describe another model than the one the file yields.
    for (key, value) in declared(&e) {
        let have = meta.get(key)?;
        ensure!(
            have == value,
            "metadata `{key}` is {have} but the experiment says {value}"
        );
    }
    Ok(e)
}

/// The metadata keys that describe the network an experiment builds, and
/// the scaling its inputs take.
fn declared(e: &Experiment) -> [(&'static str, String); 6] {
    [
        ("features", e.features.to_string()),
        ("hidden_layers", e.hidden_layers.to_string()),
        ("units", e.units.to_string()),
        ("activation", value_name(&e.activation)),
        ("init", value_name(&e.init)),
        ("normalize", value_name(&e.normalize)),
    ]
}

/// The stored scaling: `none`, or `standard` with a finite mean and a
/// positive standard deviation per feature.
fn read_normalization(meta: &Meta, features: usize) -> Result<Normalization> {
    match meta.get("normalize")? {
        "none" => Ok(Normalization::None),
        "standard" => {
            let array = |key: &str| -> Result<Vec<f64>> {
                let v: Vec<f64> = serde_json::from_str(meta.get(key)?)
                    .map_err(|_| anyhow!("metadata `{key}` is not a JSON array of numbers"))?;
                if v.len() != features || v.iter().any(|x| !x.is_finite()) {
                    bail!("metadata `{key}` needs {features} finite numbers, has {v:?}");
                }
                Ok(v)
            };
            let (mean, sd) = (array("normalize_mean")?, array("normalize_std")?);
            if sd.iter().any(|s| *s <= 0.0) {
                bail!("metadata `normalize_std` has a value <= 0");
            }
            Ok(Normalization::Standard { mean, sd })
        }
        other => bail!("metadata `normalize` is `{other}`, expected none or standard"),
    }
}

/// The tensors, exactly those of the declared architecture, float32.
fn read_layers(st: &SafeTensors, e: &Experiment) -> Result<Layers> {
    let expected = tensor_names(e);
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(foreign) = st.names().into_iter().find(|n| !names.contains(n)) {
        let names = names.join(", ");
        bail!("tensor `{foreign}` is not part of this network (expected {names})");
    }
    let tensor = |(name, shape): &(String, Vec<usize>)| -> Result<Vec<f32>> {
        let view = st
            .tensor(name)
            .map_err(|_| anyhow!("tensor `{name}` is missing"))?;
        if view.dtype() != Dtype::F32 {
            bail!("tensor `{name}` is {:?}, expected F32", view.dtype());
        }
        if view.shape() != shape.as_slice() {
            bail!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                view.shape()
            );
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        // A NaN or infinite weight answers NaN (or nothing sensible) for
        // every point: the file cannot be a finished run's model.
        if let Some(x) = data.iter().find(|x| !x.is_finite()) {
            bail!("tensor `{name}` holds {x}: a trained model's weights are finite");
        }
        Ok(data)
    };
    expected
        .chunks(2)
        .map(|wb| Ok((tensor(&wb[0])?, tensor(&wb[1])?)))
        .collect()
}

/// What a run saves when it finishes: its settings, seed and scaling, with
/// this build's versions.
pub fn trained(
    experiment: &Experiment,
    seed: u64,
    epochs_completed: usize,
    normalization: &Normalization,
    layers: Layers,
) -> SavedModel {
    debug_assert_eq!(
        experiment.normalize == Normalize::Standard,
        matches!(normalization, Normalization::Standard { .. })
    );
    SavedModel {
        experiment: experiment.clone(),
        seed,
        epochs_completed,
        normalization: normalization.clone(),
        versions: VERSIONS,
        layers,
    }
}

/// safetensors' bytes for `views` and `metadata`, the header's keys in
/// sorted order. The crate writes the metadata map in its hash order, which
/// changes from map to map: the same model would not give the same bytes.
pub(crate) fn serialize(
    views: Vec<(String, TensorView<'_>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| anyhow!("{e:?}"))?;
    let len = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    // serde_json's maps are sorted (no `preserve_order` in this build).
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len])?;
    let mut text = serde_json::to_vec(&header)?;
    // The format pads the header with spaces to keep the data 8-byte aligned.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - len);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    out.extend(&bytes[8 + len..]);
    Ok(out)
}

/// A file's metadata (safetensors keeps text values) as the serde struct
/// `T`: each field one key, its value text (a string as it is, a number in
/// decimal, structured values as JSON through [`json_text`]).
pub(crate) fn to_metadata<T: serde::Serialize>(meta: &T) -> Result<HashMap<String, String>> {
    let serde_json::Value::Object(fields) = serde_json::to_value(meta)? else {
        bail!("metadata is not a struct");
    };
    fields
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Ok((k, other.to_string())),
        })
        .collect()
}

/// The struct `T` from a file's metadata, of which [`to_metadata`] wrote
/// every value as text: numbers are read back from theirs.
pub(crate) fn from_metadata<T: serde::de::DeserializeOwned>(
    meta: &HashMap<String, String>,
) -> Result<T> {
    let fields = meta
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| anyhow!("metadata: {e}"))
}

/// A metadata field kept as text: JSON for structured values, the decimal
/// form for numbers (`#[serde(with = "model_file::json_text")]`).
pub(crate) mod json_text {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_model_always_encodes_to_the_same_bytes() {
        let e = Experiment::preset("baseline").unwrap();
        let model = trained(
            &e,
            7,
            3,
            &Normalization::None,
            crate::model::initial_values(&e, 7),
        );
        let bytes = model.to_bytes().unwrap();
        for _ in 0..20 {
            assert_eq!(model.to_bytes().unwrap(), bytes);
        }
        assert_eq!(SavedModel::from_bytes(&bytes).unwrap(), model);
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0, "data stays 8-byte aligned");
    }
}
