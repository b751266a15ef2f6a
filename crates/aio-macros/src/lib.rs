//! `#[aio::main]` and `#[aio::test]`: run an `async fn` on an aio loop.
//!
//! Both rewrite `async fn name(..) -> R { body }` into a plain
//! `fn name(..) -> R`, whose body runs `async move { body }` on a new loop
//! until it completes and closes the loop, so the function behaves like
//! `asyncio.run(main())`. `#[aio::test]` also adds `#[test]`.
//!
//! ```ignore
//! #[aio::main]
//! async fn main() {
//!     aio::sleep(0.1).await.unwrap();
//!     println!("hello");
//! }
//!
//! #[aio::test(start_paused = true)]
//! async fn a_minute_in_no_time() {
//!     aio::sleep(60).await.unwrap(); // the paused clock jumps
//! }
//! ```
//!
//! Arguments (comma separated, all optional):
//! - `start_paused = true`: the loop starts with a paused clock
//!   (`Builder::paused_clock`), for tests of timeouts that run instantly.
//! - `crate = "path"`: the crate the expansion calls into, for a renamed
//!   dependency. The default is `::aio`, the facade (the loop gets the
//!   default I/O backend); through aio-core's re-exports
//!   (`#[aio_core::main]`, `#[aio_core::test]`) it is `::aio_core` (a loop
//!   without I/O), so crates that depend on aio-core alone can use them.
//!   Any path that has aio's hidden `__private::run` works.
//!
//! Configure a loop with `aio::Builder` and `aio::Runner` when you need
//! more.
//!
//! Written on `proc_macro` alone (no `syn`), so the macro crate builds in
//! a moment and keeps the spans of the user's code.
#![forbid(unsafe_code)]

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs an `async fn main` on a new aio loop (the facade's `aio::run`).
/// Takes `start_paused = true` and `crate = "path"` (see the crate docs).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, false, "::aio")
}

/// Runs an `async fn` test on a new aio loop and marks it `#[test]`.
/// Takes `start_paused = true` and `crate = "path"` (see the crate docs).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, true, "::aio")
}

/// [`main`] calling into `::aio_core` (re-exported as `aio_core::main`).
#[doc(hidden)]
#[proc_macro_attribute]
pub fn core_main(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, false, "::aio_core")
}

/// [`test`] calling into `::aio_core` (re-exported as `aio_core::test`).
#[doc(hidden)]
#[proc_macro_attribute]
pub fn core_test(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, true, "::aio_core")
}

/// The parsed attribute arguments.
struct Args {
    start_paused: bool,
    krate: TokenStream,
}

fn parse_args(args: TokenStream, default_crate: &str) -> Result<Args, TokenStream> {
    let mut out = Args {
        start_paused: false,
        krate: default_crate.parse().expect("a valid path"),
    };
    let tokens: Vec<TokenTree> = args.into_iter().collect();
    for arg in tokens.split(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ',')) {
        let (key, value) = match arg {
            [] => continue,
            [TokenTree::Ident(k), TokenTree::Punct(eq), v] if eq.as_char() == '=' => (k, v),
            [t, ..] => return Err(error(t.span(), "expected `start_paused = true` or `crate = \"path\"`")),
        };
        match key.to_string().as_str() {
            "start_paused" => {
                out.start_paused = match value {
                    TokenTree::Ident(b) if b.to_string() == "true" => true,
                    TokenTree::Ident(b) if b.to_string() == "false" => false,
                    v => return Err(error(v.span(), "`start_paused` takes `true` or `false`")),
                };
            }
            "crate" => {
                let path = match value {
                    TokenTree::Literal(l) => string_literal(l),
                    _ => None,
                };
                out.krate = match path.and_then(|p| p.parse::<TokenStream>().ok()) {
                    Some(ts) if !ts.is_empty() => ts,
                    _ => {
                        return Err(error(
                            value.span(),
                            "`crate` takes a path as a string, as `crate = \"aio\"`",
                        ));
                    }
                };
            }
            _ => {
                return Err(error(
                    key.span(),
                    "unknown argument: expected `start_paused` or `crate`",
                ));
            }
        }
    }
    Ok(out)
}

/// The contents of a plain string literal.
fn string_literal(l: &Literal) -> Option<String> {
    let s = l.to_string();
    s.strip_prefix('"')?.strip_suffix('"').map(str::to_owned)
}

fn rewrite(args: TokenStream, item: TokenStream, test: bool, default_crate: &str) -> TokenStream {
    let args = match parse_args(args, default_crate) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let is_ident = |t: &TokenTree, s: &str| matches!(t, TokenTree::Ident(i) if i.to_string() == s);
    let Some(fn_pos) = tokens.iter().position(|t| is_ident(t, "fn")) else {
        return error(Span::call_site(), "expected an `async fn`");
    };
    let Some(async_pos) = tokens[..fn_pos].iter().position(|t| is_ident(t, "async")) else {
        return error(tokens[fn_pos].span(), "the function must be `async`");
    };
    let body = match tokens.last() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g.clone(),
        _ => return error(Span::call_site(), "expected a function body"),
    };

    let mut out = TokenStream::new();
    if test {
        out.extend(path_attr(&["core", "prelude", "v1", "test"]));
    }
    for (i, t) in tokens[..tokens.len() - 1].iter().enumerate() {
        if i != async_pos {
            out.extend([t.clone()]);
        }
    }
    // { <crate>::__private::run(<start_paused>, async move <body>) }
    let span = body.span();
    let mut call = args.krate;
    call.extend(path(&["__private", "run"], span));
    let mut arg = TokenStream::new();
    arg.extend([
        TokenTree::Ident(Ident::new(if args.start_paused { "true" } else { "false" }, span)),
        TokenTree::Punct(Punct::new(',', Spacing::Alone)),
        TokenTree::Ident(Ident::new("async", span)),
        TokenTree::Ident(Ident::new("move", span)),
        TokenTree::Group(body.clone()),
    ]);
    call.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, arg))]);
    let mut block = Group::new(Delimiter::Brace, call);
    block.set_span(span);
    out.extend([TokenTree::Group(block)]);
    out
}

/// `::a::b::c` as tokens.
fn path(segments: &[&str], span: Span) -> Vec<TokenTree> {
    let mut v = Vec::new();
    for s in segments {
        let mut c1 = Punct::new(':', Spacing::Joint);
        c1.set_span(span);
        let mut c2 = Punct::new(':', Spacing::Alone);
        c2.set_span(span);
        v.push(TokenTree::Punct(c1));
        v.push(TokenTree::Punct(c2));
        v.push(TokenTree::Ident(Ident::new(s, span)));
    }
    v
}

/// `#[::a::b]` as tokens.
fn path_attr(segments: &[&str]) -> Vec<TokenTree> {
    let inner: TokenStream = path(segments, Span::call_site()).into_iter().collect();
    vec![
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, inner)),
    ]
}

/// `compile_error!("msg")` at `span`.
fn error(span: Span, msg: &str) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(span);
    let mut ts = TokenStream::new();
    ts.extend(path(&["core", "compile_error"], span));
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    ts.extend([
        TokenTree::Punct(bang),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, TokenTree::Literal(lit).into())),
    ]);
    ts
}
