//! TensorFlow's event files, as TensorBoard reads them: TFRecords of
//! `Event` messages (`tensorflow/core/util/event.proto`, `summary.proto`,
//! `tensor.proto`), and the HParams plugin's messages
//! (`tensorboard/plugins/hparams/plugin_data.proto`, `api.proto`). Each
//! message declares only the fields binclass writes, numbered as in those
//! files; prost encodes them and crc32c checksums the records.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::{ListValue, Value};

#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
    #[prost(message, optional, tag = "10")]
    pub source_metadata: Option<SourceMetadata>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

#[derive(Clone, PartialEq, Message)]
pub struct SourceMetadata {
    #[prost(string, tag = "1")]
    pub writer: String,
}

/// `status` 1 is `SessionLog.START`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionLog {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `dtype` 1 is `DT_FLOAT`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "HParams", tags = "2, 3, 4")]
    pub data: Option<HParams>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParams {
    #[prost(message, tag = "2")]
    Experiment(Experiment),
    #[prost(message, tag = "3")]
    SessionStart(SessionStartInfo),
    #[prost(message, tag = "4")]
    SessionEnd(SessionEndInfo),
}

#[derive(Clone, PartialEq, Message)]
pub struct Experiment {
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `type` 1 is `DATA_TYPE_STRING`, 3 `DATA_TYPE_FLOAT64`.
#[derive(Clone, PartialEq, Message)]
pub struct HParamInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "4")]
    pub r#type: i32,
    #[prost(message, optional, tag = "5")]
    pub domain_discrete: Option<ListValue>,
    #[prost(bool, tag = "7")]
    pub differs: bool,
}

/// `dataset_type` 2 is `DATASET_VALIDATION`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricInfo {
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(int32, tag = "5")]
    pub dataset_type: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricName {
    #[prost(string, tag = "1")]
    pub group: String,
    #[prost(string, tag = "2")]
    pub tag: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, Value>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `status` 1 is `STATUS_SUCCESS`, 2 `STATUS_FAILURE`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// Appends `event` as one TFRecord: its length, the length's masked
/// CRC-32C, the message, the message's masked CRC-32C.
pub fn record(out: &mut Vec<u8>, event: &Event) {
    frame(out, &event.encode_to_vec());
}

fn frame(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    for part in [&len[..], data] {
        out.extend_from_slice(part);
        out.extend_from_slice(&masked_crc(part).to_le_bytes());
    }
}

/// TFRecord's masked CRC-32C, which keeps a checksum of data holding
/// checksums from being one itself.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn event(wall_time: f64, step: i64, what: What) -> Event {
    Event {
        wall_time,
        step,
        what: Some(what),
        source_metadata: None,
    }
}

/// The records every file starts with: its version (`brain.Event:2`, in
/// which only a `SessionLog.START` makes TensorBoard's Python loader drop
/// data), and with `start` a START at step 0: the file holds a whole run,
/// and what earlier files of it hold is to be dropped (the Python loader
/// does at a second START, the Rust one when steps go back).
pub fn header(wall_time: f64, start: bool) -> Vec<u8> {
    let mut out = vec![];
    let mut version = event(wall_time, 0, What::FileVersion("brain.Event:2".into()));
    version.source_metadata = Some(SourceMetadata {
        writer: "binclass".into(),
    });
    record(&mut out, &version);
    if start {
        let start = What::SessionLog(SessionLog { status: 1 });
        record(&mut out, &event(wall_time, 0, start));
    }
    out
}

/// One record of a summary for the plugin `plugin_name`, with its `content`:
/// a float32 (`dtype` 1) tensor of shape `dim` holding `data` under `tag`.
fn summary(
    out: &mut Vec<u8>,
    at: (f64, i64),
    tag: &str,
    tensor: (Vec<Dim>, Vec<u8>),
    plugin: (&str, Vec<u8>),
) {
    let ((dim, tensor_content), (plugin_name, content)) = (tensor, plugin);
    let value = SummaryValue {
        tag: tag.into(),
        tensor: Some(TensorProto {
            dtype: 1,
            tensor_shape: Some(TensorShape { dim }),
            tensor_content,
        }),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: plugin_name.into(),
                content,
            }),
        }),
    };
    let summary = What::Summary(Summary { value: vec![value] });
    record(out, &event(at.0, at.1, summary));
}

/// A scalar as Keras's TensorBoard callback writes it (`tf.summary.scalar`):
/// a float32 tensor of shape `[]` for the scalars plugin.
pub fn scalar(out: &mut Vec<u8>, wall_time: f64, tag: &str, step: i64, value: f32) {
    let tensor = (vec![], value.to_le_bytes().to_vec());
    summary(out, (wall_time, step), tag, tensor, ("scalars", vec![]));
}

/// An HParams plugin summary, as `tensorboard.plugins.hparams.summary`
/// writes it: the data in the metadata, an empty float tensor as the value.
pub fn hparams(out: &mut Vec<u8>, wall_time: f64, data: HParams) {
    let tag = match data {
        HParams::Experiment(_) => "_hparams_/experiment",
        HParams::SessionStart(_) => "_hparams_/session_start_info",
        HParams::SessionEnd(_) => "_hparams_/session_end_info",
    };
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    }
    .encode_to_vec();
    let tensor = (vec![Dim { size: 0 }], vec![]);
    summary(out, (wall_time, 0), tag, tensor, ("hparams", content));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_as_tensorflows_tfrecord_writer_frames_them() {
        // The bytes `tf.io.TFRecordWriter` wrote for b"" and b"binclass".
        let mut out = vec![];
        frame(&mut out, b"");
        frame(&mut out, b"binclass");
        let tf = "000000000000000029039807d8ea82a2\
                  0800000000000000ff86240f62696e636c61737320153f0e";
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, tf);
    }
}
