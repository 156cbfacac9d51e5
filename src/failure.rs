//! libtorch reports failures (an allocation refused, a CUDA error) by
//! throwing, which tch turns into a panic whose message carries a C++
//! backtrace. These turn such a panic back into one line a user can act on.

use std::any::Any;

/// The message a panic carried.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// One line for a panic's message: an out-of-memory says what to lower;
/// anything else is a bug, shown without libtorch's backtrace.
pub fn describe(msg: &str) -> String {
    // tch: `called `Result::unwrap()` on an `Err` value: Torch("<what>\nException raised from …`,
    // the error's Debug form, so libtorch's line breaks arrive escaped (`\n`).
    let what = msg
        .split_once("Torch(\"")
        .map_or(msg, |(_, rest)| rest)
        .lines()
        .next()
        .unwrap_or("")
        .split("\\n")
        .next()
        .unwrap_or("")
        .trim_end_matches("\")")
        .trim();
    let lower = what.to_ascii_lowercase();
    if lower.contains("can't allocate memory") || lower.contains("out of memory") {
        format!(
            "out of memory: {what}; lower --samples, --batch-size or --chunk (a sweep), or use another device"
        )
    } else {
        format!("internal error (please report): {what}")
    }
}

/// A panic turned into an error for the command to return.
pub fn to_error(payload: &(dyn Any + Send)) -> anyhow::Error {
    anyhow::anyhow!(describe(&panic_message(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_failure_is_one_line_naming_what_to_lower() {
        let msg = "called `Result::unwrap()` on an `Err` value: Torch(\"DefaultCPUAllocator: can't allocate memory: you tried to allocate 2880000000 bytes. Error code 12 (Cannot allocate memory)\\nException raised from allocate_cpu at /pytorch/c10/core/impl/alloc_cpu.cpp:117 (most recent call first):\\nframe #0: ...\")";
        let msg = msg.replace("\\n", "\n");
        let line = describe(&msg);
        assert!(!line.contains('\n') && !line.contains("frame #0"), "{line}");
        assert!(line.starts_with("out of memory: DefaultCPUAllocator: can't allocate memory: you tried to allocate 2880000000 bytes"), "{line}");
        assert!(line.contains("lower --samples"), "{line}");
    }

    #[test]
    fn a_libtorch_error_as_tch_formats_it_is_one_line_without_the_backtrace() {
        // The Debug form tch's `unwrap` prints: libtorch's newlines escaped.
        let msg = r#"called `Result::unwrap()` on an `Err` value: Torch("index out of range in self\nException raised from operator() at /pytorch/aten/src/ATen/native/TensorAdvancedIndexing.cpp:1757 (most recent call first):\nframe #0: c10::Error::Error(c10::SourceLocation)")"#;
        assert_eq!(
            describe(msg),
            "internal error (please report): index out of range in self"
        );
    }
}
