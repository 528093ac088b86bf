//! tokio-tungstenite peer: echo on any path, broadcast on `/ws/broadcast`.

fn main() -> anyhow::Result<()> {
    switchboard_bench::peers::main_with(
        "peer-tungstenite",
        switchboard_bench::peers::tungstenite::serve,
    )
}
