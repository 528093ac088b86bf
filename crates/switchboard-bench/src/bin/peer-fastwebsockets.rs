//! fastwebsockets peer: echo on any path, broadcast on `/ws/broadcast`.

fn main() -> anyhow::Result<()> {
    switchboard_bench::peers::main_with(
        "peer-fastwebsockets",
        switchboard_bench::peers::fastws::serve,
    )
}
