//! One call into one module: a fresh instance from the module's `InstancePre`,
//! a deadline, a memory cap, and bounds-checked handling of every pointer and
//! length the guest returns. Never compiles.
//!
//! Decisions run the guest on a wasmtime fiber inside the calling async task
//! (no hop to a blocking thread, which cost more than the guest itself): the
//! guest yields to the executor at every epoch tick, so it never holds a
//! runtime worker for longer than one tick, and traps once its wall-clock
//! deadline has passed.

use std::time::Instant;

use serde::de::DeserializeOwned;
use wasmtime::{
    Engine, InstancePre, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap,
    UpdateDeadline,
};

use super::abi::{DecisionKind, Output, exports};
use super::error::EvalError;
use super::limits::Limits;

/// Per-store state: the memory limiter, plus whether it refused a growth (so
/// the resulting trap is reported as "out of memory", not a generic trap).
pub(crate) struct Sandbox {
    limits: StoreLimits,
    memory_refused: bool,
}

impl ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.memory_refused = true;
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A guest that has run this long yields to the executor at the next tick.
const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

/// How a store's deadline fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Trap once the deadline's ticks have passed; for synchronous calls on a
    /// blocking thread (module probes at load).
    Trap,
    /// Yield to the executor at every tick, trap once the wall-clock deadline
    /// has passed; for `*_async` calls.
    YieldEachTick,
}

/// A store for one decision, with the memory cap and the deadline armed.
pub(crate) fn new_store(engine: &Engine, limits: &Limits, deadline: Deadline) -> Store<Sandbox> {
    let sandbox = Sandbox {
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .table_elements(100_000)
            .instances(1)
            .memories(1)
            .tables(4)
            // A refused memory.grow traps instead of returning -1, so a
            // policy that allocates forever stops at once.
            .trap_on_grow_failure(true)
            .build(),
        memory_refused: false,
    };
    let mut store = Store::new(engine, sandbox);
    store.limiter(|s| s);
    match deadline {
        Deadline::Trap => {
            store.set_epoch_deadline(limits.deadline_ticks());
            store.epoch_deadline_trap();
        }
        Deadline::YieldEachTick => {
            let started = Instant::now();
            let until = started + limits.timeout;
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                let now = Instant::now();
                Ok(if now >= until {
                    UpdateDeadline::Interrupt
                } else if now - started < YIELD_AFTER {
                    // A tick landed early in a short call: a round trip
                    // through the executor would cost more than finishing.
                    UpdateDeadline::Continue(1)
                } else {
                    UpdateDeadline::Yield(1)
                })
            });
        }
    }
    store
}

/// Maps a wasmtime error to what happened, in the policy's terms.
pub(crate) fn classify(err: wasmtime::Error, store: &Store<Sandbox>, limits: &Limits) -> EvalError {
    if store.data().memory_refused {
        return EvalError::OutOfMemory {
            cap: limits.memory_bytes,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => EvalError::Timeout {
            ms: limits.timeout.as_millis(),
        },
        _ => EvalError::Trap(format!("{err:#}")),
    }
}

/// Calls `policy_evaluate(kind, input)` in a fresh instance and returns the
/// output document's bytes, copied out of guest memory.
pub(crate) async fn call(
    engine: &Engine,
    module: &InstancePre<Sandbox>,
    kind: DecisionKind,
    input: &[u8],
    limits: &Limits,
) -> Result<Vec<u8>, EvalError> {
    if input.len() > limits.max_input_bytes {
        return Err(EvalError::InputTooLarge {
            size: input.len(),
            cap: limits.max_input_bytes,
        });
    }
    let len = i32::try_from(input.len()).map_err(|_| EvalError::InputTooLarge {
        size: input.len(),
        cap: limits.max_input_bytes,
    })?;
    let mut store = new_store(engine, limits, Deadline::YieldEachTick);
    let run = async |store: &mut Store<Sandbox>| -> Result<Vec<u8>, wasmtime::Error> {
        let instance = module.instantiate_async(&mut *store).await?;
        // Export presence and types were checked at load.
        let memory = instance
            .get_memory(&mut *store, exports::MEMORY)
            .ok_or_else(|| wasmtime::format_err!("no memory export"))?;
        let alloc = instance.get_typed_func::<i32, i32>(&mut *store, exports::ALLOC)?;
        let evaluate =
            instance.get_typed_func::<(i32, i32, i32), i64>(&mut *store, exports::EVALUATE)?;

        let ptr = alloc.call_async(&mut *store, len).await?;
        // `write` bounds-checks against the current memory size.
        memory
            .write(&mut *store, ptr as u32 as usize, input)
            .map_err(|_| {
                wasmtime::Error::new(OutOfBounds {
                    ptr: u64::from(ptr as u32),
                    len: input.len() as u64,
                    memory: memory.data_size(&*store),
                })
            })?;
        let code = kind.code() as i32;
        let packed = evaluate.call_async(&mut *store, (code, ptr, len)).await? as u64;
        let (out_ptr, out_len) = (packed >> 32, packed & 0xffff_ffff);
        if out_len > limits.max_output_bytes as u64 {
            return Err(wasmtime::Error::new(TooLarge(out_len)));
        }
        let data = memory.data(&*store);
        // Both halves are < 2^32, so the sum cannot overflow a u64.
        let range = usize::try_from(out_ptr)
            .ok()
            .zip(usize::try_from(out_ptr + out_len).ok());
        match range.and_then(|(start, end)| data.get(start..end)) {
            Some(out) => Ok(out.to_vec()),
            None => Err(wasmtime::Error::new(OutOfBounds {
                ptr: out_ptr,
                len: out_len,
                memory: data.len(),
            })),
        }
    };
    run(&mut store).await.map_err(|err| {
        if let Some(oob) = err.downcast_ref::<OutOfBounds>() {
            return EvalError::OutOfBounds {
                ptr: oob.ptr,
                len: oob.len,
                memory: oob.memory,
            };
        }
        if let Some(TooLarge(size)) = err.downcast_ref::<TooLarge>() {
            return EvalError::OutputTooLarge {
                size: usize::try_from(*size).unwrap_or(usize::MAX),
                cap: limits.max_output_bytes,
            };
        }
        classify(err, &store, limits)
    })
}

/// Parses an output document (`{"ok":...}` / `{"error":...}`).
pub(crate) fn parse_output<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EvalError> {
    let output: Output<T> =
        serde_json::from_slice(bytes).map_err(|e| EvalError::Malformed(e.to_string()))?;
    match output {
        Output::Ok(answer) => Ok(answer),
        Output::Error(message) => Err(EvalError::Reported(truncate(message, 1024))),
    }
}

/// Limits a guest-supplied message before it reaches logs and status.
pub(crate) fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut cut = max;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[derive(Debug)]
struct OutOfBounds {
    ptr: u64,
    len: u64,
    memory: usize,
}

impl std::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "out-of-bounds buffer {}+{} in {} bytes",
            self.ptr, self.len, self.memory
        )
    }
}

impl std::error::Error for OutOfBounds {}

#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "output of {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}
