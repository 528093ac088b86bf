//! Handlers: async functions whose arguments are extractors.

use std::marker::PhantomData;
use std::pin::Pin;

use super::extract::{FromRequest, RequestContext};
use crate::error::{Error, Rejection};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How a handler finished (an implementation detail of [`Handler`]).
#[doc(hidden)]
#[derive(Debug)]
pub enum Outcome {
    /// An extractor refused the request.
    Rejected(Rejection),
    /// The handler ran and returned.
    Done(Result<(), Error>),
}

/// What a handler may return: `()` or `Result<(), E>` where `E: Into<Error>`.
pub trait IntoHandlerResult {
    /// Converts into the framework's result.
    fn into_handler_result(self) -> Result<(), Error>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

/// An async function usable as a route handler: every argument implements
/// [`FromRequest`], and it returns `()` or `Result<(), E: Into<Error>>`.
pub trait Handler<T>: Clone + Send + Sync + 'static {
    /// Extracts the arguments and runs the handler.
    #[doc(hidden)]
    fn call(self, cx: RequestContext) -> BoxFuture<Outcome>;
}

macro_rules! impl_handler {
    ($($ty:ident),*) => {
        impl<F, Fut, R, $($ty,)*> Handler<($($ty,)*)> for F
        where
            F: FnOnce($($ty,)*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($ty: FromRequest + 'static,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call(self, mut cx: RequestContext) -> BoxFuture<Outcome> {
                Box::pin(async move {
                    $(
                        let $ty = match $ty::from_request(&mut cx).await {
                            Ok(value) => value,
                            Err(rejection) => return Outcome::Rejected(rejection),
                        };
                    )*
                    drop(cx);
                    Outcome::Done(self($($ty,)*).await.into_handler_result())
                })
            }
        }
    };
}

impl_handler!();
impl_handler!(T1);
impl_handler!(T1, T2);
impl_handler!(T1, T2, T3);
impl_handler!(T1, T2, T3, T4);
impl_handler!(T1, T2, T3, T4, T5);
impl_handler!(T1, T2, T3, T4, T5, T6);
impl_handler!(T1, T2, T3, T4, T5, T6, T7);
impl_handler!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A handler with its argument types erased, so routes can share one table.
pub(crate) trait ErasedHandler: Send + Sync {
    fn call(&self, cx: RequestContext) -> BoxFuture<Outcome>;
}

pub(crate) struct Erased<H, T> {
    pub(crate) handler: H,
    pub(crate) _args: PhantomData<fn() -> T>,
}

impl<H: Handler<T>, T: 'static> ErasedHandler for Erased<H, T> {
    fn call(&self, cx: RequestContext) -> BoxFuture<Outcome> {
        self.handler.clone().call(cx)
    }
}
