//! `#[aio::main]` and `#[aio::test]`: run an `async fn` on an aio loop.
//!
//! Both rewrite `async fn name(..) -> R { body }` into a plain
//! `fn name(..) -> R { ::aio::run(async move { body }) }`, so the function
//! behaves like `asyncio.run(main())`. `#[aio::test]` also adds `#[test]`.
//! They take no arguments: configure a loop with `aio::Builder` and
//! `aio::Runner` when you need more.
//!
//! ```ignore
//! #[aio::main]
//! async fn main() {
//!     aio::sleep(0.1).await.unwrap();
//!     println!("hello");
//! }
//! ```
//!
//! Written on `proc_macro` alone (no `syn`), so the macro crate builds in
//! a moment and keeps the spans of the user's code.
#![forbid(unsafe_code)]

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs an `async fn main` with `aio::run`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, false)
}

/// Runs an `async fn` test with `aio::run` and marks it `#[test]`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args, item, true)
}

fn rewrite(args: TokenStream, item: TokenStream, test: bool) -> TokenStream {
    if let Some(t) = args.into_iter().next() {
        return error(t.span(), "aio's attribute macros take no arguments");
    }
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
    // { ::aio::run(async move <body>) }
    let mut call = TokenStream::new();
    call.extend(path(&["aio", "run"], body.span()));
    let mut arg = TokenStream::new();
    arg.extend([
        TokenTree::Ident(Ident::new("async", body.span())),
        TokenTree::Ident(Ident::new("move", body.span())),
        TokenTree::Group(body.clone()),
    ]);
    call.extend([TokenTree::Group(Group::new(Delimiter::Parenthesis, arg))]);
    let mut block = Group::new(Delimiter::Brace, call);
    block.set_span(body.span());
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
    let mut lit = proc_macro::Literal::string(msg);
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
