//! The blocking facade over [`crate::Netlink`], for synchronous callers
//! such as the CLI.
//!
//! Why async underneath: `rtnetlink` is async-only, and berth's engine will
//! be a tokio program that calls [`crate::Netlink`] directly. Why a
//! facade and not a second implementation: each method here is the async
//! one driven to completion by a private current-thread runtime
//! (`Runtime::block_on`), so both APIs share every line that talks to the
//! kernel. The runtime is current-thread so that a synchronous caller gets
//! no background threads, and the socket's task only runs inside
//! `block_on` on the caller's own thread.
//!
//! Do not use this from inside a tokio runtime: `block_on` there panics
//! ("Cannot start a runtime from within a runtime"); use the async API.

use std::net::IpAddr;

use tokio::runtime::{Builder, Runtime};

use crate::address::Address;
use crate::bridge::BridgeSpec;
use crate::error::{Error, Result};
use crate::links::Link;
use crate::netns::Netns;
use crate::route::Route;
use crate::veth::VethSpec;

/// A blocking rtnetlink connection bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    // Declared before `runtime` so that it drops first: its drop aborts
    // the socket task, which the runtime then reaps.
    inner: crate::Netlink,
    runtime: Runtime,
}

impl Netlink {
    /// A connection to the calling thread's namespace.
    pub fn open() -> Result<Self> {
        let runtime = runtime()?;
        let inner = {
            let _context = runtime.enter();
            crate::Netlink::open()?
        };
        Ok(Self { inner, runtime })
    }

    /// A connection to `netns`; see [`crate::Netlink::open_in`].
    pub fn open_in(netns: &Netns) -> Result<Self> {
        let runtime = runtime()?;
        let inner = {
            let _context = runtime.enter();
            crate::Netlink::open_in(netns)?
        };
        Ok(Self { inner, runtime })
    }

    /// The label of the namespace this connection acts in.
    pub fn netns(&self) -> &str {
        self.inner.netns()
    }
}

fn runtime() -> Result<Runtime> {
    Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::Runtime)
}

/// Each listed method blocks on the async method of the same name; its
/// documentation is there.
macro_rules! blocking {
    ($( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Netlink {
            $(
                #[doc = concat!("Blocking [`crate::Netlink::", stringify!($name), "`].")]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.runtime.block_on(self.inner.$name($($arg),*))
                }
            )*
        }
    };
}

blocking! {
    fn link(&self, name: &str) -> Result<Link>;
    fn find_link(&self, name: &str) -> Result<Option<Link>>;
    fn link_by_index(&self, index: u32) -> Result<Link>;
    fn links(&self) -> Result<Vec<Link>>;
    fn links_with_name_prefix(&self, prefix: &str) -> Result<Vec<Link>>;
    fn links_with_alias_prefix(&self, prefix: &str) -> Result<Vec<Link>>;
    fn delete_link(&self, name: &str) -> Result<()>;
    fn rename_link(&self, name: &str, new_name: &str) -> Result<()>;
    fn set_link_up(&self, name: &str) -> Result<()>;
    fn set_link_down(&self, name: &str) -> Result<()>;
    fn set_mtu(&self, name: &str, mtu: u32) -> Result<()>;
    fn set_master(&self, name: &str, master: &str) -> Result<()>;
    fn set_alias(&self, name: &str, alias: &str) -> Result<()>;
    fn move_link(&self, name: &str, netns: &Netns) -> Result<()>;
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<Link>;
    fn create_veth(&self, spec: &VethSpec<'_>) -> Result<Link>;
    fn add_address(&self, link: &str, address: IpAddr, prefix_len: u8) -> Result<()>;
    fn delete_address(&self, link: &str, address: IpAddr, prefix_len: u8) -> Result<()>;
    fn addresses(&self, link: &str) -> Result<Vec<Address>>;
    fn add_default_route(&self, gateway: IpAddr) -> Result<()>;
    fn add_route(&self, destination: IpAddr, prefix_len: u8, link: &str) -> Result<()>;
    fn delete_route(&self, destination: IpAddr, prefix_len: u8, link: &str) -> Result<()>;
    fn routes(&self) -> Result<Vec<Route>>;
}
