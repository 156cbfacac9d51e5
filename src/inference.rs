//! libtorch's inference mode around the training step: `no_grad`, and
//! operations also skip autograd's and view tracking's dispatch layers. The
//! step writes its own gradients, so it never needs them, and at this
//! network's size those layers are a fifth of an operation's cost.
//!
//! Tensors made inside are inference tensors: usable afterwards as inputs to
//! any operation, but never by autograd or in place outside the mode. The
//! parameters, gradients and reused buffers the step writes are ordinary
//! tensors made outside it, which the mode allows writing in place; what it
//! makes inside (the logits) is only read afterwards.

unsafe extern "C" {
    fn binclass_inference_mode_enter() -> *mut std::ffi::c_void;
    fn binclass_inference_mode_exit(guard: *mut std::ffi::c_void);
}

/// Left on drop, so a panic inside still restores the previous mode.
struct Guard(*mut std::ffi::c_void);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: the pointer came from enter on this thread, and is freed once.
        unsafe { binclass_inference_mode_exit(self.0) }
    }
}

/// Runs `f` in libtorch's inference mode (`c10::InferenceMode`).
pub fn inference_mode<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: enter allocates a guard that sets thread-local state; Guard
    // restores it on this thread when `f` returns or unwinds.
    let _guard = Guard(unsafe { binclass_inference_mode_enter() });
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn tensors_made_inside_are_inference_tensors_and_the_mode_ends_after() {
        let inside = inference_mode(|| Tensor::ones([2], (Kind::Float, tch::Device::Cpu)) * 2);
        let outside = Tensor::ones([2], (Kind::Float, tch::Device::Cpu)) * 2;
        assert!(inside.is_inference());
        assert!(!outside.is_inference());
        // Usable as an input afterwards.
        assert_eq!(
            f64::try_from((&inside + &outside).sum(Kind::Float)).unwrap(),
            8.0
        );
    }
}
