//! Ground floor: the one macro the ports share.

/// A port behind an `Arc` is the same port: tests keep a handle to inspect an adapter, and the
/// local platform shares one between functions. The macro writes the forwarding impl from the
/// trait's method signatures, so no port carries a hand-written copy of it.
macro_rules! forward_through_arc {
    ($port:ident { $(fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)* }) => {
        impl<T: $port> $port for std::sync::Arc<T> {
            $(
                fn $method(&self $(, $arg: $ty)*) -> $ret {
                    self.as_ref().$method($($arg),*)
                }
            )*
        }
    };
}
