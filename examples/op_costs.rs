//! What single libtorch operations cost at this network's sizes, timed one
//! by one (best of 5 rounds): the figures behind the written-out steps.
//! At [30, 3] a step is per-operation overhead (0.3–2 µs an op, more with a
//! scalar argument or an allocation); at a sweep's [30, 3, R] the elementwise
//! work shows, and `tanh` stands out (libtorch calls MKL's VML for it).
//! `cargo run --release --example op_costs`
use std::time::Instant;
use tch::{Device, Kind, Tensor};
fn time(label: &str, mut f: impl FnMut()) {
    for _ in 0..2000 {
        f();
    }
    let n = 50_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    println!("{label:<40} {best:>7.2} us");
}
fn main() {
    tch::set_num_threads(1);
    let o = (Kind::Float, Device::Cpu);
    let x = Tensor::rand([30, 3], o);
    let y = Tensor::rand([30, 3], o);
    let w = Tensor::rand([3, 3], o);
    let b = Tensor::rand([3], o);
    let mut buf = Tensor::empty([30, 3], o);
    let wg = Tensor::rand([3, 3], o).set_requires_grad(true);
    let bg = Tensor::rand([3], o).set_requires_grad(true);
    tch::no_grad(|| {
        time("empty [30,3]", || {
            let _ = Tensor::empty([30, 3], o);
        });
        time("tr (view)", || {
            let _ = w.tr();
        });
        time("narrow (view)", || {
            let _ = x.narrow(0, 0, 10);
        });
        time("tanh", || {
            let _ = x.tanh();
        });
        time("tanh_out", || {
            let _ = x.tanh_out(&buf);
        });
        time("tanh_ on buf", || {
            buf.copy_(&x);
            let _ = buf.tanh_();
        });
        time("add", || {
            let _ = &x + &y;
        });
        time("add_", || {
            let _ = buf.g_add_(&y);
        });
        time("mul scalar", || {
            let _ = x.g_mul_scalar(0.5);
        });
        time("mm [30,3]x[3,3]", || {
            let _ = x.mm(&w);
        });
        time("mm_out", || {
            let _ = x.mm_out(&buf, &w);
        });
        time("addmm", || {
            let _ = b.addmm(&x, &w);
        });
        time("addmm_out", || {
            let _ = b.addmm_out(&buf, &x, &w);
        });
        time("linear", || {
            let _ = x.linear(&w, Some(&b));
        });
        time("linear (requires_grad params)", || {
            let _ = x.linear(&wg, Some(&bg));
        });
        time("tanh_backward", || {
            let _ = Tensor::tanh_backward(&y, &x);
        });
        time("sigmoid", || {
            let _ = x.sigmoid();
        });
        time("sum dim0", || {
            let _ = x.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        });
        time("g.tr().mm(input) [3,30]x[30,3]", || {
            let _ = y.tr().mm(&x);
        });
        let r = 128;
        let xr = Tensor::rand([30, 3, r], o);
        let wr = Tensor::rand([3, 3, r], o);
        let br = Tensor::rand([3, r], o);
        let bufr = Tensor::empty([30, 3, r], o);
        time("R128 mul+sum layer", || {
            let _ = (xr.unsqueeze(2) * wr.unsqueeze(0)).sum_dim_intlist(
                [1i64].as_slice(),
                false,
                Kind::Float,
            );
        });
        time("R128 3x addcmul layer", || {
            let mut out = br.expand([30, 3, r], false).copy();
            for i in 0..3 {
                let _ = out.addcmul_(&xr.select(1, i).unsqueeze(1), &wr.select(0, i).unsqueeze(0));
            }
        });
        time("R128 tanh", || {
            let _ = xr.tanh();
        });
        time("R128 tanh_out", || {
            let _ = xr.tanh_out(&bufr);
        });
        time("R128 add", || {
            let _ = &xr + &xr;
        });
        let xb = Tensor::rand([r, 30, 3], o);
        let wb = Tensor::rand([r, 3, 3], o);
        time("R128 bmm", || {
            let _ = xb.bmm(&wb);
        });
        let xf = Tensor::rand([30 * r, 3], o);
        time("mm [3840,3]x[3,3]", || {
            let _ = xf.mm(&w);
        });
    });
}
