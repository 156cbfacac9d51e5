// libtorch's InferenceMode guard, which tch does not expose: entered and left
// by src/inference.rs. Kept to these two functions.
#include <c10/core/InferenceMode.h>

extern "C" void* binclass_inference_mode_enter() {
  return new c10::InferenceMode(true);
}

extern "C" void binclass_inference_mode_exit(void* guard) {
  delete static_cast<c10::InferenceMode*>(guard);
}
