//! What a plugin's panic said and where, for the host's log line, in place of std's default
//! report (an untagged `thread '<unnamed>' panicked at src/lib.rs` on stderr).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// How many guarded calls this thread is in: panics outside them keep std's report.
    /// Apart from the note: a thread-local without a destructor costs no check of its
    /// state, and this one is read around every call of every request.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last panic raised inside a guarded call: its message, and where.
    static NOTE: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Install this library's panic hook, once. Each plugin carries its own std, so the hook
/// sees only the panics of this plugin's code; those outside a guarded call (a thread
/// the plugin started) keep std's report.
pub(crate) fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                return report(info);
            }
            let at = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let msg = message(info.payload()).to_string();
            NOTE.with(|n| *n.borrow_mut() = Some((msg, at)));
        }));
    });
}

/// Run `f`, turning a panic into its note: the message and where it was raised (the place
/// only when the hook saw this very panic: not one the plugin caught itself and raised
/// again with `resume_unwind`, which skips the hook).
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    // One look-up of the thread-local (in a plugin, a call into the dynamic loader) for
    // both steps: this runs around every test call of every request.
    let r = DEPTH.with(|d| {
        d.set(d.get() + 1);
        let r = catch_unwind(AssertUnwindSafe(f));
        d.set(d.get() - 1);
        r
    });
    r.map_err(|payload| {
        let msg = message(&*payload);
        match NOTE.with(|n| n.borrow_mut().take()) {
            Some((seen, at)) if seen == msg => format!("{msg:?}{at}"),
            _ => format!("{msg:?}"),
        }
    })
}

/// A panic's message, when it is text.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_panic_gives_its_message_and_place() {
        install();
        let note = guard(|| -> () { panic!("no key: {}", 42) }).unwrap_err();
        assert!(note.starts_with("\"no key: 42\" at "), "{note}");
        assert!(note.contains("panic_note.rs:"), "{note}");
        assert_eq!(guard(|| 7), Ok(7));
    }

    #[test]
    fn a_panic_raised_again_without_the_hook_is_not_given_an_earlier_ones_place() {
        install();
        let note = guard(|| -> () {
            let caught = std::panic::catch_unwind(|| panic!("inner, handled"));
            assert!(caught.is_err());
            std::panic::resume_unwind(Box::new("the real one"))
        })
        .unwrap_err();
        assert_eq!(note, "\"the real one\"");
    }
}
