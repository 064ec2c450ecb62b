//! The rtnetlink connection every operation goes through.
//!
//! A netlink socket talks to the network namespace it was *created* in,
//! whatever thread later uses it. So [`Netlink::open_in`] creates the
//! socket on a dedicated thread that has entered the target namespace
//! (see [`Netns::run`]) and brings it back; the caller's thread — possibly
//! a tokio worker — never changes namespace (rust-netlink/rtnetlink#68
//! describes what goes wrong otherwise). To act on both sides of a veth,
//! open one `Netlink` per namespace, as netavark does.

use rtnetlink::Handle;
use tokio::task::AbortHandle;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// An rtnetlink connection bound to one network namespace.
///
/// This is the async API: open it and call it from inside a tokio runtime
/// with I/O enabled (`enable_io`, or `enable_all`); the socket is driven by
/// a task spawned on that runtime, which is aborted when this is dropped.
/// Synchronous callers use [`crate::blocking::Netlink`].
#[derive(Debug)]
pub struct Netlink {
    pub(crate) handle: Handle,
    /// The namespace's label, for error messages.
    netns: String,
    connection: AbortHandle,
}

impl Netlink {
    /// A connection to the namespace of the calling thread.
    pub fn open() -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(Error::NoRuntime)?;
        let netns = "<current>".to_string();
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|source| Error::OpenSocket {
            netns: netns.clone(),
            source,
        })?;
        let connection = runtime.spawn(connection).abort_handle();
        Ok(Self {
            handle,
            netns,
            connection,
        })
    }

    /// A connection to `netns`, whatever namespace the caller is in. Blocks
    /// the calling thread for the moment it takes to create a socket on a
    /// helper thread.
    pub fn open_in(netns: &Netns) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(Error::NoRuntime)?;
        let label = netns.label().to_string();
        let (connection, handle, _) = netns
            .run(|| {
                // Registering the socket with the runtime's reactor needs
                // the runtime's context on this helper thread too.
                let _context = runtime.enter();
                rtnetlink::new_connection()
            })?
            .map_err(|source| Error::OpenSocket {
                netns: label.clone(),
                source,
            })?;
        let connection = runtime.spawn(connection).abort_handle();
        Ok(Self {
            handle,
            netns: label,
            connection,
        })
    }

    /// The label of the namespace this connection acts in.
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}
