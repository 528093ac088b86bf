#!/usr/bin/env python3
"""Turns the results of bench/run into docs/benchmarks.md.

Usage: bench/report.py META_JSON RESULTS_JSONL OUT_MD

Called by bench/run; can be re-run on a kept results directory
(target/bench-results/<stamp>/) to regenerate the report.
"""

import json
import re
import statistics
import sys
from collections import defaultdict

SERVER_LABEL = {
    "switchboard": "Switchboard",
    "fastwebsockets": "fastwebsockets",
    "tungstenite": "tokio-tungstenite",
    "node": "Node ws",
    "uws": "uWebSockets",
}

SCENARIOS = {
    "echo_20": ("echo", "Echo, 100 connections × 20 B, 1 in flight"),
    "echo_1k": ("echo", "Echo, 100 connections × 1 KiB, 1 in flight"),
    "echo_16k": ("echo", "Echo, 500 connections × 16 KiB, 1 in flight"),
    "echo_pipe16": ("echo", "Pipelined echo, 100 connections × 20 B, 16 in flight"),
    "idle": ("idle", "Idle memory, 5,000 connections"),
    "storm": ("storm", "Connect storm, 32 churners, RST close, no auth"),
    "storm_hs256": ("storm", "Connect storm, 32 churners, RST close, HS256 JWT verified on every handshake"),
    "storm_rs256": ("storm", "Connect storm, 32 churners, RST close, RS256 (RSA-2048) JWT verified on every handshake"),
    "fanout": ("fanout", "Fan-out, 1 publisher → 1,000 subscribers, 64 B text, window 8"),
    "fanout_10k": ("fanout", "Fan-out, 1 publisher → 10,000 subscribers, 64 B text, window 8"),
    "fanout_10k_r10": ("fanout", "Fan-out, 1 publisher → 10,000 subscribers, 64 B text, 10 publishes/s (one message at a time)"),
    "xinst": ("fanout", "Cross-instance, 1 publisher → 1,000 subscribers over two gateways and Redis, 64 B text, window 8"),
    "xinst_r1000": ("fanout", "Cross-instance, 1 publisher → 10 subscribers over two gateways and Redis, 1,000 publishes/s"),
    "soak": ("soak", "Soak: memory after each cycle of fan-out, connect storm and echo"),
    "a2a": ("a2a", "All-to-all, N = 100, 20 B binary (broadcast_test shape)"),
    "bcast_1k": ("compress", "Broadcast, 1 publisher → 1,000 subscribers, 1 KiB JSON, window 8, compression off"),
    "bcast_1k_deflate": ("compress", "Broadcast, 1 publisher → 1,000 subscribers, 1 KiB JSON, window 8, permessage-deflate"),
    "bcast_1k_r25": ("compress", "Broadcast, 1 publisher → 1,000 subscribers, 1 KiB JSON, 25 publishes/s, compression off"),
    "bcast_1k_deflate_r25": ("compress", "Broadcast, 1 publisher → 1,000 subscribers, 1 KiB JSON, 25 publishes/s, permessage-deflate"),
    "idle_deflate": ("idle", "Idle memory, 5,000 connections, permessage-deflate agreed"),
    # Streams (history): rendered in their own section.
    "fanout_json": ("fanout", "Fan-out, 1 publisher → 1,000 subscribers, 64 B JSON, window 8, in-memory broker, history off"),
    "fanout_hist": ("fanout", "Fan-out, 1 publisher → 1,000 subscribers, 64 B JSON, window 8, in-memory broker, history on"),
    "fanout_redis": ("fanout", "Fan-out, 1 publisher → 1,000 subscribers, 64 B JSON, window 8, one gateway on Redis, history off"),
    "fanout_redis_hist": ("fanout", "Fan-out, 1 publisher → 1,000 subscribers, 64 B JSON, window 8, one gateway on Redis, history on"),
    "xinst_r5000": ("fanout", "Cross-instance, 1 publisher → 10 subscribers over two gateways and Redis, 64 B JSON, 5,000 publishes/s, history off"),
    "xinst_hist_r1000": ("fanout", "Cross-instance, 1 publisher → 10 subscribers over two gateways and Redis, 64 B JSON, 1,000 publishes/s, history on"),
    "xinst_hist_r5000": ("fanout", "Cross-instance, 1 publisher → 10 subscribers over two gateways and Redis, 64 B JSON, 5,000 publishes/s, history on"),
    "histmem": ("histmem", "Memory per channel, 100 publications of 200 B, in-memory broker, history on"),
    "histmem_off": ("histmem", "Memory per channel, 100 publications of 200 B, in-memory broker, history off"),
    "histmem_redis": ("histmem", "Memory per channel, 100 publications of 200 B, Redis broker, history on"),
    "histmem_redis_off": ("histmem", "Memory per channel, 100 publications of 200 B, Redis broker, history off"),
    "recovery": ("recovery", "Recovery of 100 missed publications, in-memory broker"),
    "recovery_redis": ("recovery", "Recovery of 100 missed publications, Redis broker"),
    # Presence (issue 18): raw JSON only; docs/benchmarks.md's "## Presence" is written by hand.
    "pres_storm_off": ("presence", "Connect + subscribe + RST storm, in-memory broker, presence off"),
    "pres_storm_on": ("presence", "Connect + subscribe + RST storm, in-memory broker, presence on"),
    "pres_storm_redis_off": ("presence", "Connect + subscribe + RST storm, Redis broker, presence off"),
    "pres_storm_redis_on": ("presence", "Connect + subscribe + RST storm, Redis broker, presence on"),
    "pres_ops_redis_off": ("presence", "Connect + subscribe, held 50 ms, + RST, Redis broker, presence off"),
    "pres_ops_redis_on": ("presence", "Connect + subscribe, held 50 ms, + RST, Redis broker, presence on"),
    "pres_stats_100k": ("presence", "Presence stats of a 100,000-member channel (Redis)"),
    "pres_kill": ("presence", "SIGKILL of a gateway to the last leave event on another"),
}

PRESENCE_SCENARIOS = {sc for sc, (kind, _) in SCENARIOS.items() if kind == "presence"}

STREAM_SCENARIOS = {"fanout_json", "fanout_hist", "fanout_redis", "fanout_redis_hist", "xinst_r5000",
                    "xinst_hist_r1000", "xinst_hist_r5000", "histmem", "histmem_off", "histmem_redis",
                    "histmem_redis_off", "recovery", "recovery_redis"}


# Scenarios only Switchboard runs (the peers have no JWT, no broker, no permessage-deflate);
# their tables leave the peers out.
SWITCHBOARD_ONLY = {"storm_hs256", "storm_rs256", "xinst", "xinst_r1000", "soak",
                    "bcast_1k_deflate", "bcast_1k_deflate_r25", "idle_deflate"} | STREAM_SCENARIOS | PRESENCE_SCENARIOS


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_num(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def fmt_us(v):
    if v is None:
        return "—"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs" if v >= 100 else f"{v:.1f} µs"


def fmt_range(xs, digits=0):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    return f" ({fmt_num(min(xs), digits)}–{fmt_num(max(xs), digits)})"


def get(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


class Cell:
    """All repetitions of one (server, scenario)."""

    def __init__(self, recs):
        self.recs = recs
        self.ok = [r for r in recs if r.get("status") == "ok" and isinstance(r.get("result"), dict)
                   and "error" not in r["result"]]
        self.failed = [r for r in recs if r.get("status") == "ok" and r not in self.ok]
        skipped = [r["status"] for r in recs if r.get("status") != "ok"]
        self.reason = skipped[0] if skipped else None
        if not self.ok and self.failed:
            err = get(self.failed[0], "result", "error") or f"exit {self.failed[0].get('exit')}"
            self.reason = f"failed: {err}"

    def vals(self, *path):
        return [get(r["result"], *path) for r in self.ok]

    def m(self, *path):
        return med(self.vals(*path))

    def total(self, *path):
        vs = [v for v in self.vals(*path) if v is not None]
        return sum(vs) if vs else None

    def util(self):
        """Median share of a core used by the server and by the generator in the window."""
        sv = self.m("server_cpu", "utilisation")
        gv = self.m("generator_cpu", "utilisation")
        f = lambda v: "—" if v is None else f"{v * 100:.0f}%"
        return f"{f(sv)} / {f(gv)}"

    def script_cpu_us_per(self, *count_path):
        out = []
        for r in self.ok:
            n = get(r["result"], *count_path)
            if n:
                out.append(r["script_cpu_ticks"] / r["clk_tck"] * 1e6 / n)
        return med(out)


def deflate_agreed(cell):
    """'N of M' connections with permessage-deflate, or 'not offered'."""
    if not any(cell.vals("deflate_offered")):
        return "not offered"
    agreed = cell.m("deflate_negotiated")
    if agreed is None:
        agreed = cell.m("connect", "deflate_negotiated")
    return f"{fmt_num(agreed)} of {fmt_num(cell.m('connect', 'established'))}"


def compression_section(w, cells, scenarios, servers):
    """Switchboard with permessage-deflate off and on, side by side."""
    names = {"bcast_1k", "bcast_1k_deflate", "bcast_1k_r25", "bcast_1k_deflate_r25", "idle_deflate"}
    if "switchboard" not in servers or not (names & set(scenarios)):
        return
    w("## Compression")
    w("")
    w("Switchboard's `/ws/broadcast`, 1 publisher → 1,000 subscribers, 1,024-byte chat-like JSON, "
      "permessage-deflate off and on (the gateway's defaults: level 1, messages from 256 bytes, "
      "no context takeover either way, so each broadcast is compressed once and the same bytes go "
      "to every subscriber). Every delivery is inflated and checked byte for byte. Medians over "
      "repetitions; range in parentheses.")
    w("")
    pairs = [
        ("bcast_1k", "bcast_1k_deflate",
         "As fast as the window allows (8 messages not yet delivered to everyone)"),
        ("bcast_1k_r25", "bcast_1k_deflate_r25",
         "At the same load: 25 publishes/s (25,000 deliveries/s)"),
    ]
    for sc_off, sc_on, title in pairs:
        off, on = cells.get(("switchboard", sc_off)), cells.get(("switchboard", sc_on))
        if off is None and on is None:
            continue
        w(f"**{title}**")
        w("")
        w("| | compression off | permessage-deflate | on ÷ off |")
        w("|---|---|---|---|")

        def row(label, key, digits, fmt=None):
            a = off.m(*key) if off is not None and off.ok else None
            b = on.m(*key) if on is not None and on.ok else None
            f = fmt or (lambda v, cell: fmt_num(v, digits) + fmt_range(cell.vals(*key), digits))
            ca = f(a, off) if a is not None else "—"
            cb = f(b, on) if b is not None else "—"
            r = f"{b / a:.2f}×" if (a and b is not None) else "—"
            w(f"| {label} | {ca} | {cb} | {r} |")

        row("server CPU per delivery (µs)", ("server_cpu_us_per_delivery",), 2)
        row("bytes on the wire per delivery", ("wire_bytes_per_delivery",), 1)
        row("deliveries per server CPU-second", ("deliveries_per_server_cpu_sec",), 0)
        row("deliveries/s", ("deliveries_per_sec",), 0)
        row("latency p50", ("latency", "p50_us"), 0, lambda v, cell: fmt_us(v))
        row("latency p99", ("latency", "p99_us"), 0, lambda v, cell: fmt_us(v))
        row("server CPU (share of a core)", ("server_cpu", "utilisation"), 0,
            lambda v, cell: f"{v * 100:.0f}%")
        row("generator CPU (share of a core; it inflates and checks every delivery)",
            ("generator_cpu", "utilisation"), 0, lambda v, cell: f"{v * 100:.0f}%")
        if on is not None and on.ok:
            w("")
            w(f"With deflate: agreed with {deflate_agreed(on)} subscribers; "
              f"{fmt_num(on.total('compressed_deliveries'))} of {fmt_num(on.total('deliveries'))} "
              "deliveries in the windows arrived compressed; a delivery that differs from what was "
              "published counts as foreign and then missing: foreign "
              f"{fmt_num(on.total('foreign_messages'))}, missing {fmt_num(on.total('sequence', 'missing'))}, "
              f"subscriber errors {fmt_num(on.total('subscriber_errors'))}.")
        elif on is not None:
            w("")
            w(f"With deflate: not measured ({on.reason or 'no result'}).")
        w("")
    idle, idle_d = cells.get(("switchboard", "idle")), cells.get(("switchboard", "idle_deflate"))
    if idle_d is not None:
        if idle_d.ok:
            v = idle_d.m("bytes_per_conn")
            base = idle.m("bytes_per_conn") if idle is not None and idle.ok else None
            w(f"Idle memory with permessage-deflate agreed ({deflate_agreed(idle_d)} connections): "
              f"**{fmt_num(v)} B per connection** (VmRSS; RssAnon {fmt_num(idle_d.m('anon_bytes_per_conn'))} B)"
              + (f", against {fmt_num(base)} B without deflate in this run" if base is not None else "")
              + f". Target ≤ 16 KiB user space: {'met' if v is not None and v <= 16384 else '**MISSED**'}.")
        else:
            w(f"Idle memory with permessage-deflate: not measured ({idle_d.reason or 'no result'}).")
        w("")


# ---------------------------------------------------------------------- streams (history)
def _rate(cell):
    """Publishes per second achieved, median over repetitions."""
    return med([r["result"]["published"] / r["result"]["duration_s"] for r in cell.ok
                if r["result"].get("duration_s")])


def _paired_ratios(a, b, *key):
    """b ÷ a per repetition (same rep number), for the range next to a ratio of medians."""
    ra = {r["rep"]: get(r["result"], *key) for r in a.ok}
    out = []
    for r in b.ok:
        x, y = ra.get(r["rep"]), get(r["result"], *key)
        if x and y is not None:
            out.append(y / x)
    return out


def _redis_ms(cell):
    return med([r["redis_cpu_ticks"] / r["clk_tck"] * 1000 for r in cell.ok
                if r.get("redis_cpu_ticks") is not None])


def _ok(cell):
    return cell is not None and bool(cell.ok)


def _why(cell):
    return "not run" if cell is None else (cell.reason or "no result")


def stream_targets(cells):
    """Rows (label, measured, status) for the streams targets, for the scenarios that ran."""
    rows = []

    def sb(sc):
        return cells.get(("switchboard", sc))

    for off_sc, on_sc, broker in [("fanout_json", "fanout_hist", "in-memory broker"),
                                  ("fanout_redis", "fanout_redis_hist", "Redis broker")]:
        off, on = sb(off_sc), sb(on_sc)
        if off is None and on is None:
            continue
        label = f"History costs at most 20 % of fan-out deliveries per server CPU-second ({broker})"
        if not _ok(off) or not _ok(on):
            rows.append((label, "—", f"not measured: {_why(off if not _ok(off) else on)}"))
            continue
        a, b = off.m("deliveries_per_server_cpu_sec"), on.m("deliveries_per_server_cpu_sec")
        if not a or b is None:
            rows.append((label, "—", "not measured: no CPU sample"))
            continue
        r = b / a
        pr = _paired_ratios(off, on, "deliveries_per_server_cpu_sec")
        measured = (f"on ÷ off = {r:.2f}× ({fmt_num(b)} vs {fmt_num(a)} deliveries per server CPU-s"
                    + (f"; per repetition {', '.join(f'{x:.2f}' for x in pr)}" if len(pr) > 1 else "") + ")")
        if broker.startswith("Redis"):
            ax = off.m("deliveries_per_server_and_aux_cpu_sec")
            bx = on.m("deliveries_per_server_and_aux_cpu_sec")
            if ax and bx is not None:
                measured += f"; gateway and redis-server CPU together: {bx / ax:.2f}×"
        rows.append((label, measured, "met" if r >= 0.8 else "**MISSED**"))

    for sc, rate, limit_us, label in [
            ("xinst_hist_r1000", 1000, 5_000, "Cross-instance p99 < 5 ms at 1,000 publishes/s, history on"),
            ("xinst_hist_r5000", 5000, 25_000, "Cross-instance p99 < 25 ms at 5,000 publishes/s, history on")]:
        cell = sb(sc)
        if cell is None:
            continue
        if not _ok(cell):
            rows.append((label, "—", f"not measured: {_why(cell)}"))
            continue
        p99 = cell.m("latency", "p99_us")
        achieved = _rate(cell)
        missing = cell.total("sequence", "missing") or 0
        measured = (f"p99 {fmt_us(p99)} (p50 {fmt_us(cell.m('latency', 'p50_us'))}) at "
                    f"{fmt_num(achieved)} publishes/s achieved; missing {fmt_num(missing)}")
        ok = p99 is not None and p99 < limit_us and achieved is not None and achieved >= 0.95 * rate
        status = "met" if ok else "**MISSED**"
        if not ok and achieved is not None and achieved < 0.95 * rate:
            status += " (the publisher did not reach the rate)"
        rows.append((label, measured, status))
    return rows


def streams_section(w, cells, scenarios, meta, groups):
    """History on and off side by side, memory per channel, recovery: Switchboard only."""
    present = [sc for sc in scenarios if sc in STREAM_SCENARIOS]
    if not present or "switchboard" not in meta["servers"]:
        return

    def sb(sc):
        return cells.get(("switchboard", sc)) if sc in scenarios else None

    w("## History and recovery (streams)")
    w("")
    w("Channels with history (docs/protocol.md, \"Streams and recovery\"; docs/configuration.md, "
      "`[history]`): every publication goes into the channel's stream and gets an offset before it "
      "is delivered; a JSON object is delivered with `\"offset\":N` as its first field. Switchboard "
      "only (the peers keep no history).")
    w("")
    load = " ".join(meta.get("load_avg_end", []) or ["?"])
    src = meta.get("source_note") or (f"commit `{meta['git_commit']}`")
    w(f"Run: `{meta.get('command') or 'bench/run'}` on {meta['date_utc']}, {src}; "
      f"{meta['cpu_model']} ({meta['cpus']} vCPUs"
      + (f", {meta['hypervisor']} guest" if meta.get("hypervisor") else "")
      + f"), kernel {meta['kernel']}, {meta['rustc']}; "
      f"{meta['reps']} repetition{'s' if meta['reps'] != 1 else ''} of {meta['duration_s']:.0f} s"
      + (", repetition-major order (rep 1 of every scenario, then rep 2, ...)" if meta.get("interleave") else "")
      + f". Load average {meta.get('load_avg_start', '?')} at the start and {load} at the end: "
      "a shared, noisy 2-core machine, so prefer the ratios and the per-CPU figures, which compare "
      "runs made minutes apart in the same session. Medians over repetitions; range in parentheses.")
    w("")
    w("Set-up: every gateway and redis-server pinned to CPU 0, the generator to CPU 1, all on "
      "127.0.0.1. History on for `/ws/broadcast` is a gateway config with "
      "`[[history.channels]] pattern = \"broadcast\"` (size 100, ttl 10 m by default); history off "
      "is the default gateway (history for `public:*` and `user:*` only). The Redis runs use a "
      "private `redis-server` (persistence off) and `[broker] type = \"redis\"`. Fan-out and "
      "cross-instance messages are 64-byte JSON objects (`--format json`), so with history each "
      "delivery carries an offset (about 13 bytes more on the wire), and the generator checks it "
      "grows by one on every subscriber.")
    w("")

    # ---- fan-out
    pairs = [("In-memory broker", "fanout_json", "fanout_hist"),
             ("Redis broker (one gateway)", "fanout_redis", "fanout_redis_hist")]
    if any(sb(a) is not None or sb(b) is not None for _, a, b in pairs):
        w("### Fan-out, history off and on")
        w("")
        w("1 publisher (a WebSocket client of `/ws/broadcast`) → 1,000 subscribers, window 8.")
        w("")
        w("| Broker | History | deliveries per server CPU-s | on ÷ off | deliveries/s | p50 | p99 | last subscriber p99 | server / generator CPU | deliveries with an offset (not consecutive) | missing / dup |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for broker, off_sc, on_sc in pairs:
            off, on = sb(off_sc), sb(on_sc)
            for hist, cell in [("off", off), ("on", on)]:
                if cell is None:
                    continue
                if not cell.ok:
                    w(f"| {broker} | {hist} | {_why(cell)} |" + " |" * 8)
                    continue
                ratio = ""
                if hist == "on" and _ok(off):
                    a, b = off.m("deliveries_per_server_cpu_sec"), cell.m("deliveries_per_server_cpu_sec")
                    if a and b is not None:
                        pr = _paired_ratios(off, cell, "deliveries_per_server_cpu_sec")
                        ratio = f"**{b / a:.2f}×**" + (f" ({min(pr):.2f}–{max(pr):.2f})" if len(pr) > 1 else "")
                w(f"| {broker} | {hist} "
                  f"| {fmt_num(cell.m('deliveries_per_server_cpu_sec'))}{fmt_range(cell.vals('deliveries_per_server_cpu_sec'))} "
                  f"| {ratio} "
                  f"| {fmt_num(cell.m('deliveries_per_sec'))}{fmt_range(cell.vals('deliveries_per_sec'))} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {fmt_us(cell.m('last_subscriber_latency', 'p99_us'))} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('offsets', 'deliveries_with_offset'))} ({fmt_num(cell.total('offsets', 'non_consecutive'))}) "
                  f"| {fmt_num(cell.total('sequence', 'missing'))} / {fmt_num(cell.total('sequence', 'duplicated'))} |")
        w("")
        off, on = sb("fanout_redis"), sb("fanout_redis_hist")
        parts = []
        for hist, cell in [("off", off), ("on", on)]:
            if _ok(cell):
                aux = cell.m("aux_cpu", "utilisation")
                both = cell.m("deliveries_per_server_and_aux_cpu_sec")
                parts.append(f"history {hist}: redis-server at {'—' if aux is None else f'{aux * 100:.0f}%'} of a core, "
                             f"{fmt_num(both)} deliveries per CPU-second of gateway and redis-server together")
        if parts:
            w("Redis's own CPU in the window (not in the server columns above): " + "; ".join(parts) + ".")
            w("")

    # ---- cross-instance
    xs = [("xinst_r1000", "off (64 B text)", 1000), ("xinst_hist_r1000", "on", 1000),
          ("xinst_r5000", "off", 5000), ("xinst_hist_r5000", "on", 5000)]
    if any(sb(sc) is not None for sc, _, _ in xs if sc != "xinst_r1000"):
        w("### Cross-instance latency at a fixed rate")
        w("")
        w("Two gateways on one Redis; 10 subscribers alternate between them; the publisher is a "
          "WebSocket client of the first gateway, so half of the deliveries cross Redis. Latency is "
          "publish → delivery over every subscriber.")
        w("")
        w("| Rate | History | publishes/s achieved | p50 | p99 | p99.9 | p99 on the other gateway | missing / dup | with an offset (not consecutive) | gateways' CPU | redis-server CPU |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for sc, hist, rate in xs:
            cell = sb(sc)
            if cell is None:
                continue
            if not cell.ok:
                w(f"| {rate:,}/s | {hist} | {_why(cell)} |" + " |" * 8)
                continue
            other = med([get(r["result"], "per_url")[1]["latency"]["p99_us"] for r in cell.ok
                         if len(r["result"].get("per_url") or []) > 1])
            sv = cell.m("server_cpu", "utilisation")
            ax = cell.m("aux_cpu", "utilisation")
            w(f"| {rate:,}/s | {hist} | {fmt_num(_rate(cell))} "
              f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))}{'' if len(cell.ok) < 2 else ' (' + fmt_us(min(cell.vals('latency', 'p99_us'))) + '–' + fmt_us(max(cell.vals('latency', 'p99_us'))) + ')'} "
              f"| {fmt_us(cell.m('latency', 'p999_us'))} | {fmt_us(other)} "
              f"| {fmt_num(cell.total('sequence', 'missing'))} / {fmt_num(cell.total('sequence', 'duplicated'))} "
              f"| {fmt_num(cell.total('offsets', 'deliveries_with_offset'))} ({fmt_num(cell.total('offsets', 'non_consecutive'))}) "
              f"| {'—' if sv is None else f'{sv * 100:.0f}%'} | {'—' if ax is None else f'{ax * 100:.0f}%'} |")
        w("")

    # ---- memory
    mems = [("In-memory", "histmem_off", "histmem"), ("Redis", "histmem_redis_off", "histmem_redis")]
    if any(sb(a) is not None or sb(b) is not None for _, a, b in mems):
        w("### Memory per channel")
        w("")
        some = next((c for _, a, b in mems for c in (sb(a), sb(b)) if _ok(c)), None)
        n = some.m("channels") if some else None
        w(f"{fmt_num(n)} channels (`public:mem-<n>`), 100 publications of 200 bytes of raw text each, "
          "made through the HTTP API (`POST /api/v1/publish`, 4 keep-alive connections) with nobody "
          "subscribed, after 20 warm-up channels. The gateway's VmRSS and RssAnon, and Redis's "
          "`used_memory` (`INFO memory`), are read 1 s before and 1 s after; the difference divided "
          "by the number of channels. History off is the same gateway with `[history] channels = []`.")
        w("")
        w("| Broker | History | gateway VmRSS per channel | gateway RssAnon per channel | Redis used_memory per channel | Redis keys added | publishes/s | history of one channel |")
        w("|---|---|---|---|---|---|---|---|")
        for broker, off_sc, on_sc in mems:
            for hist, cell in [("off", sb(off_sc)), ("on", sb(on_sc))]:
                if cell is None:
                    continue
                if not cell.ok:
                    w(f"| {broker} | {hist} | {_why(cell)} |" + " |" * 5)
                    continue
                keys = med([k[1] - k[0] for k in cell.vals("redis_keys") if k])
                hc = [h for h in cell.vals("history_check") if h]
                hcs = f"HTTP {hc[0][0]}, {hc[0][1]} kept" if hc else "—"
                w(f"| {broker} | {hist} "
                  f"| {fmt_num(cell.m('vmrss', 'per_channel'))} B{fmt_range(cell.vals('vmrss', 'per_channel'))} "
                  f"| {fmt_num(cell.m('rss_anon', 'per_channel'))} B "
                  f"| {'—' if cell.m('redis_used_memory', 'per_channel') is None else fmt_num(cell.m('redis_used_memory', 'per_channel')) + ' B' + fmt_range(cell.vals('redis_used_memory', 'per_channel'))} "
                  f"| {fmt_num(keys)} "
                  f"| {fmt_num(cell.m('publishes_per_sec'))} | {hcs} |")
        w("")
        lines = []
        for broker, off_sc, on_sc in mems:
            off, on = sb(off_sc), sb(on_sc)
            if not _ok(on):
                continue
            key = ("redis_used_memory", "per_channel") if broker == "Redis" else ("vmrss", "per_channel")
            what = "Redis used_memory" if broker == "Redis" else "gateway VmRSS"
            b = on.m(*key)
            a = off.m(*key) if _ok(off) else None
            if b is None:
                continue
            cost = b - (a or 0)
            lines.append(f"{broker} broker: history costs **{fmt_num(cost)} B per channel** of {what} "
                         f"(on {fmt_num(b)} − off {fmt_num(a)}), {cost / 100:,.0f} B per 200-byte publication, "
                         f"{cost / 100 - 200:,.0f} B of it overhead")
        if lines:
            w("; ".join(lines) + ".")
            w("")

    # ---- recovery
    recs = [("In-memory", "recovery"), ("Redis", "recovery_redis")]
    if any(sb(sc) is not None for _, sc in recs):
        w("### Recovery of 100 missed publications")
        w("")
        w("One client of `/ws` (the structured protocol) subscribes to `public:bench-recovery` "
          "(history by default) and keeps its position (epoch, offset). Each iteration it closes "
          "its connection, 100 `EVENT`s (about 200 bytes each as received) are published through "
          "`POST /api/v1/publish`, one after the other, each answered with the next offset, and it "
          "reconnects and sends `SUBSCRIBE` with `{\"channel\": .., \"recover\": {\"epoch\", \"offset\"}}`. "
          "The sample is the time from writing that `SUBSCRIBE` to reading the 100th replayed "
          "publication; `SUBSCRIBE_SUCCESS` must say `recovered: true` and the 100 must be exactly the "
          "missed offsets, in order, with the data published. 5 warm-up iterations are not counted.")
        w("")
        w("| Broker | recoveries | recovered / not / failed | p50 | p99 | p99.9 | max | to SUBSCRIBE_SUCCESS p50 | reconnect → 100th p99 | server CPU per recovery | one HTTP publish p50 |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for broker, sc in recs:
            cell = sb(sc)
            if cell is None:
                continue
            if not cell.ok:
                w(f"| {broker} | {_why(cell)} |" + " |" * 9)
                continue
            w(f"| {broker} | {fmt_num(cell.total('iterations'))} "
              f"| {fmt_num(cell.total('recovered'))} / {fmt_num(cell.total('not_recovered'))} / {fmt_num(cell.total('failed'))} "
              f"| {fmt_us(cell.m('latency', 'p50_us'))} | **{fmt_us(cell.m('latency', 'p99_us'))}**"
              f"{'' if len(cell.ok) < 2 else ' (' + fmt_us(min(cell.vals('latency', 'p99_us'))) + '–' + fmt_us(max(cell.vals('latency', 'p99_us'))) + ')'} "
              f"| {fmt_us(cell.m('latency', 'p999_us'))} | {fmt_us(max(cell.vals('latency', 'max_us')))} "
              f"| {fmt_us(cell.m('ack_latency', 'p50_us'))} | {fmt_us(cell.m('reconnect_latency', 'p99_us'))} "
              f"| {fmt_us(cell.m('server_cpu_us_per_recovery'))} | {fmt_us(cell.m('publish_latency', 'p50_us'))} |")
        w("")

    # ---- targets
    rows = stream_targets(cells)
    if rows:
        w("### Targets")
        w("")
        w("| Target | Measured | Status |")
        w("|---|---|---|")
        for label, measured, status in rows:
            w(f"| {label} | {measured} | {status} |")
        w("")

    # ---- hand-written reading (bench/analysis-streams.md), kept so a regenerated report keeps it
    import os
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis-streams.md")
    if os.path.exists(analysis):
        w(open(analysis).read().rstrip())
        w("")

    # ---- commands
    w("### Exact commands")
    w("")
    w("Generator commands as run (PORT, PORT_A, PORT_B: free loopback ports; $SERVER_PID, "
      "$GATEWAY_A/B, $REDIS: the processes bench/run started). Gateways: "
      "`taskset -c 0 target/release/switchboard serve --listen 127.0.0.1:PORT [--config FILE]`, "
      "Redis: `taskset -c 0 redis-server --port REDIS_PORT --bind 127.0.0.1 --save \"\" --appendonly no`.")
    w("")
    w("```sh record")
    for sc in present + (["xinst_r1000"] if "xinst_r1000" in scenarios else []):
        for r in groups.get(("switchboard", sc), [])[:1]:
            if r.get("command"):
                w(f"# {sc}" + (f" (gateway config: {CONFIG_NOTE[sc]})" if sc in CONFIG_NOTE else ""))
                w(re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", r["command"]))
    w("```")
    w("")


CONFIG_NOTE = {
    "fanout_hist": "[[history.channels]] pattern = \"broadcast\"",
    "histmem_off": "[history] channels = []",
    "fanout_redis": "[broker] type = \"redis\"",
    "fanout_redis_hist": "[broker] type = \"redis\" + [[history.channels]] pattern = \"broadcast\"",
    "xinst_r1000": "[broker] type = \"redis\", two gateways; 64 B text",
    "xinst_r5000": "[broker] type = \"redis\", two gateways",
    "xinst_hist_r1000": "[broker] type = \"redis\" + [[history.channels]] pattern = \"broadcast\", two gateways",
    "xinst_hist_r5000": "[broker] type = \"redis\" + [[history.channels]] pattern = \"broadcast\", two gateways",
    "histmem_redis": "[broker] type = \"redis\"",
    "histmem_redis_off": "[broker] type = \"redis\" + [history] channels = []",
    "recovery_redis": "[broker] type = \"redis\"",
}


def soak_section(w, cell):
    """Memory over a long run: VmRSS after each cycle, with every client gone."""
    if cell is None or not cell.ok:
        w(f"Not measured: {cell.reason if cell else 'not run'}.")
        w("")
        return
    res = cell.ok[0]["result"]
    cycles = res.get("cycles") or []
    base = res.get("baseline_vmrss_kib")
    w(f"One gateway, {len(cycles)} cycles. VmRSS before the first cycle: {fmt_num(base)} KiB.")
    w("")
    w("| Cycle | VmRSS after (KiB) | fan-out deliveries | missing | handshakes | echoes verified |")
    w("|---|---|---|---|---|---|")
    for c in cycles:
        w(f"| {c['cycle']} | {fmt_num(c.get('vmrss_kib'))} "
          f"| {fmt_num(get(c, 'fanout', 'deliveries'))} | {fmt_num(get(c, 'fanout', 'sequence', 'missing'))} "
          f"| {fmt_num(get(c, 'storm', 'handshakes'))} | {fmt_num(get(c, 'echo', 'verified'))} |")
    w("")
    rss = [c.get("vmrss_kib") for c in cycles if c.get("vmrss_kib")]
    if len(rss) >= 3:
        later = rss[1:]
        w(f"From cycle 2 to cycle {len(rss)}: {later[-1] - later[0]:+,} KiB "
          f"(min {min(later):,}, max {max(later):,} KiB); cycle 1 includes the allocator's first "
          "growth to the working set.")
        w("")


def soak_verdict(cell):
    """(measured text, status) for the flat-memory target."""
    if cell is None or not cell.ok:
        return None
    cycles = cell.ok[0]["result"].get("cycles") or []
    rss = [c.get("vmrss_kib") for c in cycles if c.get("vmrss_kib")]
    if len(rss) < 3:
        return None
    later = rss[1:]
    growth = later[-1] - later[0]
    # Flat: the last cycle is within 5 % (or 2 MiB) of cycle 2's, and no cycle after the
    # first exceeds the first by more than that either.
    tol = max(2048, 0.05 * later[0])
    flat = growth <= tol and max(later) - rss[0] <= tol
    return (f"VmRSS after cycle 1: {rss[0]:,} KiB; cycle 2: {later[0]:,} KiB; cycle {len(rss)}: "
            f"{later[-1]:,} KiB ({growth:+,} KiB)", "met" if flat else "**MISSED**")


# ---------------------------------------------------------------------- uWebSockets (issue 20)
UWS_TARGETS = [
    ("echo_20", "msgs_per_server_cpu_sec", "Echo 100 × 20 B"),
    ("echo_1k", "msgs_per_server_cpu_sec", "Echo 100 × 1 KiB"),
    ("echo_16k", "msgs_per_server_cpu_sec", "Echo 500 × 16 KiB"),
    ("fanout", "deliveries_per_server_cpu_sec", "Fan-out 1 → 1,000"),
]


def floor_line(meta):
    """The measured kernel floor for one publish to 10,000 idle loopback sockets, or None."""
    f = meta.get("send_floor") or {}
    idle = f.get("idle")
    if not idle:
        return None, None
    rd = f.get("reader") or {}
    text = (f"one `send` of a {idle['frame_bytes']}-byte frame to an idle loopback socket costs "
            f"**{idle['cpu_ns_per_send_p50'] / 1000:.2f} µs of CPU** (median of {idle['rounds']} rounds of "
            f"{idle['n']:,}; {idle['cpu_ns_per_send_min'] / 1000:.2f}–{idle['cpu_ns_per_send_max'] / 1000:.2f}), "
            f"so **{idle['n']:,} sends = {idle['floor_ms_cpu_p50']:.1f} ms** on a core of its own "
            f"(wall time on this run's shared core: {idle['floor_ms_wall_p50']:.1f} ms)")
    if rd:
        text += (f"; with a reader woken in epoll on CPU 1, as the generator's subscribers are: "
                 f"{rd['cpu_ns_per_send_p50'] / 1000:.2f} µs of CPU per send, {rd['floor_ms_cpu_p50']:.1f} ms "
                 f"(wall {rd['floor_ms_wall_p50']:.1f} ms)")
    return text, idle["floor_ms_cpu_p50"] * 1000


def uws_section(w, cells, scenarios, servers, meta):
    """Switchboard ÷ uWebSockets per server CPU-second, with the issue-20 targets."""
    if "uws" not in servers or "switchboard" not in servers:
        return
    w("## Switchboard and uWebSockets")
    w("")
    w(f"uWebSockets: {meta.get('uws', 'v20.79.0')} ({meta.get('uws_status', '?')}). Ratios are "
      "Switchboard ÷ uWebSockets of the medians per server CPU-second (higher is better), with the "
      "range of the per-repetition ratios (repetition k of one against repetition k of the other, "
      "which ran back to back).")
    w("")
    w("| Target (per server CPU-second) | Switchboard | uWebSockets | Switchboard ÷ uWebSockets | Status |")
    w("|---|---|---|---|---|")
    for sc, key, label in UWS_TARGETS:
        if sc not in scenarios:
            continue
        sb, uw = cells.get(("switchboard", sc)), cells.get(("uws", sc))
        if not _ok(sb) or not _ok(uw):
            w(f"| {label} ≥ 1.0× | {_why(sb) if not _ok(sb) else '—'} | {_why(uw) if not _ok(uw) else '—'} | — | not measured |")
            continue
        a, b = sb.m(key), uw.m(key)
        pr = _paired_ratios(uw, sb, key)
        r = a / b if (a and b) else None
        rng = f" ({min(pr):.2f}–{max(pr):.2f})" if len(pr) > 1 else ""
        status = "met" if r is not None and r >= 1.0 else "**MISSED**"
        w(f"| {label} ≥ 1.0× | {fmt_num(a)}{fmt_range(sb.vals(key))} | {fmt_num(b)}{fmt_range(uw.vals(key))} "
          f"| **{r:.2f}×**{rng} | {status} |" if r else f"| {label} ≥ 1.0× | — | — | — | not measured |")
    text, floor_us = floor_line(meta)
    if "fanout_10k_r10" in scenarios:
        sb, uw = cells.get(("switchboard", "fanout_10k_r10")), cells.get(("uws", "fanout_10k_r10"))
        label = "Fan-out 1 → 10,000 at 10/s: last subscriber p50 within 10 % of min(uWebSockets, floor)"
        if not _ok(sb) or not _ok(uw):
            w(f"| {label} | {_why(sb) if not _ok(sb) else '—'} | {_why(uw) if not _ok(uw) else '—'} | — | not measured |")
        else:
            a = sb.m("last_subscriber_latency", "p50_us")
            b = uw.m("last_subscriber_latency", "p50_us")
            ref = min(x for x in (b, floor_us) if x is not None)
            ok = a is not None and ref and a <= 1.1 * ref
            def lat_range(cell):
                vs = [v for v in cell.vals("last_subscriber_latency", "p50_us") if v]
                return f" ({min(vs) / 1000:.0f}–{max(vs) / 1000:.0f} ms)" if len(vs) > 1 else ""
            w(f"| {label} | {fmt_us(a)}{lat_range(sb)} | {fmt_us(b)}{lat_range(uw)} "
              f"| {a / b:.2f}× uWebSockets' latency; floor {fmt_us(floor_us)} | "
              f"{'met' if ok else '**MISSED**'} (limit {fmt_us(1.1 * ref) if ref else '—'}) |")
    w("")
    if text:
        w(f"Floor (`bench/floor/send_floor.c`, pinned to CPU 0, after the runs): {text}.")
        w("")
    # Everything else side by side, per server CPU-second, plus fastwebsockets when it ran.
    others = [p for p in ("fastwebsockets", "tungstenite", "node") if p in servers]
    w("| " + " | ".join(["Scenario", "Switchboard ÷ uWebSockets per server CPU-s (range)"]
                         + [f"Switchboard ÷ {SERVER_LABEL[p]} (range)" for p in others]) + " |")
    w("|---|---|" + "---|" * len(others))
    for sc in scenarios:
        if sc in SWITCHBOARD_ONLY or sc not in SCENARIOS:
            continue
        kind = SCENARIOS[sc][0]
        key = {"echo": "msgs_per_server_cpu_sec", "storm": "handshakes_per_server_cpu_sec",
               "fanout": "deliveries_per_server_cpu_sec", "a2a": "deliveries_per_server_cpu_sec",
               "idle": "bytes_per_conn"}.get(kind)
        if key is None:
            continue
        row = [SCENARIOS[sc][1] + (" (bytes/conn, lower is better)" if kind == "idle" else "")]
        sb = cells.get(("switchboard", sc))
        for p in ["uws"] + others:
            pc = cells.get((p, sc))
            if not _ok(sb) or not _ok(pc):
                row.append("—")
                continue
            a, b = sb.m(key), pc.m(key)
            pr = _paired_ratios(pc, sb, key)
            rng = f" ({min(pr):.2f}–{max(pr):.2f})" if len(pr) > 1 else ""
            row.append(f"{a / b:.2f}×{rng}" if (a and b) else "—")
        w("| " + " | ".join(row) + " |")
    w("")


def main():
    meta_path, results_path, out_path = sys.argv[1:4]
    meta = json.load(open(meta_path))
    recs = [json.loads(line) for line in open(results_path) if line.strip()]
    groups = defaultdict(list)
    for r in recs:
        groups[(r["server"], r["scenario"])].append(r)
    servers = meta["servers"]
    scenarios = [s for s in meta["scenarios"] if s in SCENARIOS]
    cells = {(sv, sc): Cell(groups.get((sv, sc), [])) for sv in servers for sc in scenarios}

    L = []
    w = L.append
    quick = meta.get("quick")
    w("# Benchmarks")
    w("")
    dirty = meta.get("git_dirty_files") or 0
    w("Generated by `bench/run` on " + meta["date_utc"] + f" from commit `{meta['git_commit']}`"
      + (f" plus uncommitted changes in {dirty} file(s) under `crates/` (the build uses the "
         "working tree)." if dirty else "."))
    w("")
    if quick:
        w(f"> **This is a quick run** (`bench/run --quick`: {meta['reps']} repetition of "
          f"{meta['duration_s']:.0f} s per measurement) **on a noisy, shared 2-core virtual machine**: "
          "other builds and tests were running on the same two vCPUs (load average "
          f"{meta.get('load_avg_start', '?')} at the start, {' '.join(meta.get('load_avg_end', []) or ['?'])} at "
          "the end). Absolute rates move a lot from run to run on this box; the server-CPU-normalised "
          "figures (µs of server CPU per message, messages per server CPU-second) are the more stable "
          "ones. Treat every number here as indicative, not as a result.")
    else:
        w(f"> {meta['reps']} repetitions of {meta['duration_s']:.0f} s per measurement; the tables "
          "show the median and, in parentheses, the range. The machine is a shared 2-core virtual "
          f"machine (load average {meta.get('load_avg_start', '?')} at the start): prefer the "
          "server-CPU-normalised figures.")
    w("")

    # ------------------------------------------------------------------ machine
    w("## Machine and versions")
    w("")
    w(f"- CPU: {meta['cpu_model']} ({meta['cpus']} vCPUs"
      + (f", {meta['hypervisor']} guest" if meta.get("hypervisor") else "") + ")")
    w(f"- Kernel: {meta['kernel']}")
    w(f"- Rust: {meta['rustc']}")
    c = meta.get("crates", {})
    w(f"- Crates: tokio {c.get('tokio')}, tokio-tungstenite {c.get('tokio-tungstenite')} "
      f"(tungstenite {c.get('tungstenite')}), fastwebsockets {c.get('fastwebsockets')}, "
      f"hyper {c.get('hyper')}, hyper-util {c.get('hyper-util')}")
    if meta.get("node"):
        w(f"- Node {meta['node']}, ws {meta.get('node_ws')}" +
          ("" if meta.get("node_status") == "ok" else f" ({meta['node_status']})"))
    else:
        w(f"- Node ws peer: {meta.get('node_status')}")
    if meta.get("uws"):
        w(f"- uWebSockets peer: {meta['uws']}; {meta.get('gxx', '')} ({meta.get('uws_status')})")
    w(f"- Switchboard (`switchboard-gateway`): {meta['switchboard_status']}")
    if meta.get("build_note"):
        w(f"- Note: {meta['build_note']}")
    w("")

    # ------------------------------------------------------------------ method
    w("## Method")
    w("")
    w("- Every server runs pinned to CPU 0 (`taskset -c 0`), the load generator "
      "(`switchboard-bench`, one thread) pinned to CPU 1 (`taskset -c 1`). Everything is on "
      "127.0.0.1. Every measurement gets a fresh server process on a free port.")
    w("- Echo follows uWebSockets' `load_test`: each connection keeps exactly one masked binary "
      "frame in flight (16 for the pipelined case) and sends the next when the echo arrives. Every "
      "echo carries a sequence number and is compared byte-for-byte with what was sent; a mismatch "
      "is an error. Throughput counts echoes received in the window (after a warm-up).")
    w("- Server CPU: utime + stime from `/proc/<pid>/stat`, sampled by the generator at the start "
      "and end of the measurement window (`--server-pid`); `bench/run` also reads it before and "
      "after each whole run (the \"whole run\" column, which includes connection setup). "
      "\"server / generator CPU\" is the share of one core each used during the window: when "
      "neither is near 100 %, the pair was held back by something else (other work on the shared "
      "machine, or wake-up latency between the two processes) and the raw rates understate what "
      "the server can do; the per-CPU figures are less affected.")
    w("- Idle: VmRSS growth of the server (`/proc/<pid>/status`) with 5,000 upgraded, silent "
      "connections, divided by 5,000 (user space only; kernel socket memory is separate).")
    w("- Connect storm: 32 concurrent churners loop TCP connect → upgrade → TCP RST; a handshake "
      "counts when the 101 and a correct `Sec-WebSocket-Accept` arrive.")
    w("- Fan-out: messages are `\"<publisher_id>:<seq>:<unix_nanos>:<padding>\"` (text) so every "
      "subscriber computes the one-way latency and missing / duplicated / out-of-order counts. "
      "The publisher is a WebSocket client on `/ws/broadcast` and keeps at most 8 messages not yet "
      "delivered to every subscriber. All-to-all uses the 18-byte binary header "
      "(`\"sb\"`, publisher u32, seq u32, unix nanos u64) padded to 20 B: every client sends one "
      "message per round, the round ends when every client has all N, deliveries = rounds × N².")
    w("- Compression (`bcast_1k`, `bcast_1k_deflate`, `idle_deflate`): the fan-out above with a "
      "1,024-byte chat-like JSON text (`--format json`: records of users, rooms and words that "
      "vary per message; about 2:1 at deflate level 1), without and with `--deflate` (the "
      "generator offers `permessage-deflate; client_max_window_bits`, inflates every compressed "
      "message with zlib-rs and checks it; the publisher sends uncompressed). \"Wire bytes per "
      "delivery\" counts the bytes the subscribers read from their sockets in the window (frame "
      "headers and payload; TCP/IP headers excluded) divided by the deliveries. The `_deflate` "
      "scenarios run on Switchboard only: the peers run without permessage-deflate.")
    w("- Connect storms with a JWT (`storm_hs256`, `storm_rs256`, Switchboard only): the gateway "
      "runs with a config whose `/ws/echo` has `guards = [\"authenticated\"]` and one "
      "`[[endpoints.security.jwt.keys]]` (HS256 with a 48-byte secret, or RS256 with an RSA-2048 "
      "public key made by `openssl genpkey`); every handshake carries `Authorization: Bearer` and "
      "the gateway verifies the signature and claims each time (it caches nothing). The configs "
      "are written to the results directory.")
    w("- Fan-out to 10,000 (`fanout_10k`): as fast as the window of 8 allows, and "
      "(`fanout_10k_r10`) at 10 publishes/s, one message at a time, so the \"last subscriber\" "
      "latency is the time one publish takes to reach all 10,000. On loopback, the kernel's work "
      "for each send (the receiving side's TCP processing and wake-up included) is charged to the "
      "sending process, so a publish to N idle sockets costs the server N send system calls.")
    w("- Cross-instance (`xinst`, `xinst_r1000`, Switchboard only): a private `redis-server` "
      "(persistence off) and two gateways with `[broker] type = \"redis\"`, all three pinned to "
      "CPU 0; subscribers alternate between the gateways and the publisher is a WebSocket client "
      "of the first, so half of the deliveries cross Redis. Server CPU adds up both gateways; "
      "Redis's own CPU is given below the table.")
    w("- Soak (`soak`, Switchboard only, once): one gateway through `SOAK_CYCLES` (default 10) "
      "cycles of a 1,000-subscriber fan-out, a 2 s connect storm and a 2 s echo run with 100 "
      "clients × 1 KiB; after each cycle, with every client gone, its VmRSS is read.")
    if "uws" in meta.get("servers", []):
        w("- uWebSockets peer (`uws`): uWebSockets **v20.79.0** (commit fe7c01a477b688a7743f754fee33bdd78d52ad91) with the uSockets it pins (commit **86097c490263ab662d62e8e7b541390bdec7d149**), Apache-2.0, built by `bench/peers/uws/build` from the pinned source tarball (`../shared/peers/uwebsockets-v20.79.0-src.tar.gz`) with `g++ -std=c++20 -O3 -DLIBUS_NO_SSL` (uSockets' C files with `gcc -std=c11 -O3 -DLIBUS_NO_SSL`, epoll backend), linked with zlib. `bench/peers/uws/server.cpp` is one `uWS::App` on one thread: echo on every path, and `/ws/broadcast`, where each open socket subscribes to one topic and every message is `App::publish`ed to it (the sender included); no compression, `maxPayloadLength` 64 MiB, `idleTimeout` 0, no automatic pings, `maxBackpressure` 1 GiB without closing. The listen backlog is uSockets' own 512 (hard-coded in `bsd.c`; the API has no backlog parameter, so the peer is not patched).")
    w("- The medians are over repetitions; each repetition interleaves the servers.")
    w("")

    # ------------------------------------------------------------------ results
    w("## Results")
    w("")
    for sc in scenarios:
        kind, title = SCENARIOS[sc]
        if sc in STREAM_SCENARIOS:
            continue  # in "History and recovery (streams)"
        if sc in PRESENCE_SCENARIOS:
            continue  # raw JSON only: docs/benchmarks.md "## Presence" is hand-written
        xinst_notes = []
        w(f"### {title}")
        w("")
        if kind == "echo":
            w("| Server | msg/s | p50 | p99 | p99.9 | server CPU µs/msg | msg per server CPU-s | whole run µs/msg | server / generator CPU | verified | mismatches | conn errors |")
            w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        elif kind == "storm":
            w("| Server | handshakes/s | p50 | p99 | server CPU µs/handshake | handshakes per server CPU-s | whole run µs/handshake | server / generator CPU | errors |")
            w("|---|---|---|---|---|---|---|---|---|")
        elif kind == "idle":
            w("| Server | bytes/conn (VmRSS) | bytes/conn (RssAnon) | kernel slab bytes/conn (both ends) | established | closed by server | permessage-deflate agreed |")
            w("|---|---|---|---|---|---|---|")
        elif kind == "compress":
            w("| Server | deliveries/s | server CPU µs/delivery | deliveries per server CPU-s | wire B/delivery | payload B | compressed deliveries | deflate agreed | p50 | p99 | server / generator CPU | published | missing |")
            w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        elif kind == "fanout":
            w("| Server | deliveries/s | deliveries per server CPU-s | p50 | p99 | last subscriber p50 | last subscriber p99 | server / generator CPU | published | missing | dup | out of order |")
            w("|---|---|---|---|---|---|---|---|---|---|---|---|")
        elif kind == "a2a":
            w("| Server | deliveries/s | deliveries per server CPU-s | rounds/s | p50 | p99 | server / generator CPU | missing | dup | stalled |")
            w("|---|---|---|---|---|---|---|---|---|---|")
        elif kind == "soak":
            soak_section(w, cells.get(("switchboard", sc)))
            continue
        for sv in servers:
            if sc in SWITCHBOARD_ONLY and sv != "switchboard":
                continue
            cell = cells[(sv, sc)]
            label = SERVER_LABEL.get(sv, sv)
            ncol = {"echo": 12, "storm": 9, "idle": 7, "fanout": 12, "a2a": 10, "compress": 13}[kind]
            if not cell.ok:
                reason = cell.reason or "not run"
                w(f"| {label} | {reason} |" + " |" * (ncol - 2))
                continue
            if kind == "echo":
                w(f"| {label} | {fmt_num(cell.m('msgs_per_sec'))}{fmt_range(cell.vals('msgs_per_sec'))} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {fmt_us(cell.m('latency', 'p999_us'))} "
                  f"| {fmt_num(cell.m('server_cpu_us_per_msg'), 2)} "
                  f"| {fmt_num(cell.m('msgs_per_server_cpu_sec'))}{fmt_range(cell.vals('msgs_per_server_cpu_sec'))} "
                  f"| {fmt_num(cell.script_cpu_us_per('verified'), 2)} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('verified'))} | {fmt_num(cell.total('mismatches'))} "
                  f"| {fmt_num(cell.total('connection_errors'))} |")
            elif kind == "storm":
                w(f"| {label} | {fmt_num(cell.m('handshakes_per_sec'))}{fmt_range(cell.vals('handshakes_per_sec'))} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {fmt_num(cell.m('server_cpu_us_per_handshake'), 1)} "
                  f"| {fmt_num(cell.m('handshakes_per_server_cpu_sec'))}{fmt_range(cell.vals('handshakes_per_server_cpu_sec'))} "
                  f"| {fmt_num(cell.script_cpu_us_per('handshakes'), 1)} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('errors'))} |")
            elif kind == "idle":
                w(f"| {label} | {fmt_num(cell.m('bytes_per_conn'))}{fmt_range(cell.vals('bytes_per_conn'))} "
                  f"| {fmt_num(cell.m('anon_bytes_per_conn'))} "
                  f"| {fmt_num(cell.m('kernel_slab_bytes_per_conn'))} "
                  f"| {fmt_num(cell.m('connect', 'established'))} | {fmt_num(cell.total('closed_by_server'))} "
                  f"| {deflate_agreed(cell)} |")
            elif kind == "compress":
                w(f"| {label} | {fmt_num(cell.m('deliveries_per_sec'))}{fmt_range(cell.vals('deliveries_per_sec'))} "
                  f"| {fmt_num(cell.m('server_cpu_us_per_delivery'), 2)}{fmt_range(cell.vals('server_cpu_us_per_delivery'), 2)} "
                  f"| {fmt_num(cell.m('deliveries_per_server_cpu_sec'))} "
                  f"| {fmt_num(cell.m('wire_bytes_per_delivery'), 1)} "
                  f"| {fmt_num(cell.m('message_bytes'))} "
                  f"| {fmt_num(cell.total('compressed_deliveries'))} of {fmt_num(cell.total('deliveries'))} "
                  f"| {deflate_agreed(cell)} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('published'))} | {fmt_num(cell.total('sequence', 'missing'))} |")
            elif kind == "fanout":
                w(f"| {label} | {fmt_num(cell.m('deliveries_per_sec'))}{fmt_range(cell.vals('deliveries_per_sec'))} "
                  f"| {fmt_num(cell.m('deliveries_per_server_cpu_sec'))}{fmt_range(cell.vals('deliveries_per_server_cpu_sec'))} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {fmt_us(cell.m('last_subscriber_latency', 'p50_us'))} "
                  f"| {fmt_us(cell.m('last_subscriber_latency', 'p99_us'))} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('published'))} | {fmt_num(cell.total('sequence', 'missing'))} "
                  f"| {fmt_num(cell.total('sequence', 'duplicated'))} "
                  f"| {fmt_num(cell.total('sequence', 'out_of_order'))} |")
                if sc.startswith("xinst"):
                    xinst_notes.append((title, cell))
            elif kind == "a2a":
                stalled = any(v for v in cell.vals("stalled"))
                w(f"| {label} | {fmt_num(cell.m('deliveries_per_sec'))}{fmt_range(cell.vals('deliveries_per_sec'))} "
                  f"| {fmt_num(cell.m('deliveries_per_server_cpu_sec'))}{fmt_range(cell.vals('deliveries_per_server_cpu_sec'))} "
                  f"| {fmt_num(cell.m('rounds_per_sec'), 1)} "
                  f"| {fmt_us(cell.m('latency', 'p50_us'))} | {fmt_us(cell.m('latency', 'p99_us'))} "
                  f"| {cell.util()} "
                  f"| {fmt_num(cell.total('sequence', 'missing'))} | {fmt_num(cell.total('sequence', 'duplicated'))} "
                  f"| {'yes' if stalled else 'no'} |")
        w("")
        for _title, cell in xinst_notes:
            parts = []
            for i, _url in enumerate(cell.ok[0]["result"].get("per_url") or []):
                def lat(key, i=i):
                    return med([get(per_url[i], "latency", key) for r in cell.ok
                                if len(per_url := r["result"].get("per_url") or []) > i])
                where = "the publisher's gateway" if i == 0 else "the other gateway (through Redis)"
                parts.append(f"subscribers on {where}: p50 {fmt_us(lat('p50_us'))}, p99 {fmt_us(lat('p99_us'))}")
            redis_ms = med([r["redis_cpu_ticks"] / r["clk_tck"] * 1000 for r in cell.ok
                            if r.get("redis_cpu_ticks") is not None])
            w("By instance: " + "; ".join(parts) + ". "
              + ("" if redis_ms is None else
                 f"redis-server used {redis_ms:.0f} ms of CPU per run (median; not in the server CPU "
                 "columns, which add up both gateways).") )
            w("")

    # ------------------------------------------------------------------ ratios
    rate_key = {"echo": "msgs_per_sec", "storm": "handshakes_per_sec", "fanout": "deliveries_per_sec",
                "a2a": "deliveries_per_sec", "compress": "deliveries_per_sec"}
    cpu_key = {"echo": "msgs_per_server_cpu_sec", "storm": "handshakes_per_server_cpu_sec",
               "fanout": "deliveries_per_server_cpu_sec", "a2a": "deliveries_per_server_cpu_sec",
               "compress": "deliveries_per_server_cpu_sec"}
    peers = [s for s in servers if s != "switchboard"]
    if "switchboard" in servers and peers:
        w("## Switchboard relative to each peer")
        w("")
        w("Ratio of medians, Switchboard ÷ peer: raw rate, then per server CPU-second (in parentheses). "
          "For idle memory, Switchboard's bytes per connection ÷ the peer's (lower is better).")
        w("")
        w("| Scenario | " + " | ".join(SERVER_LABEL.get(p, p) for p in peers) + " |")
        w("|---|" + "---|" * len(peers))
        for sc in scenarios:
            kind, title = SCENARIOS[sc]
            if sc in SWITCHBOARD_ONLY:
                continue
            sb = cells[("switchboard", sc)]
            row = [title]
            for p in peers:
                pc = cells[(p, sc)]
                if not sb.ok:
                    row.append(f"— (Switchboard: {sb.reason or 'not run'})")
                    continue
                if not pc.ok:
                    row.append(f"— (peer: {pc.reason or 'not run'})")
                    continue
                if kind == "idle":
                    a, b = sb.m("bytes_per_conn"), pc.m("bytes_per_conn")
                    row.append(f"{a / b:.2f}×" if a is not None and b else "—")
                    continue
                a, b = sb.m(rate_key[kind]), pc.m(rate_key[kind])
                ca, cb = sb.m(cpu_key[kind]), pc.m(cpu_key[kind])
                r1 = f"{a / b:.2f}×" if a is not None and b else "—"
                r2 = f"{ca / cb:.2f}×" if ca is not None and cb else "—"
                row.append(f"{r1} ({r2})")
            w("| " + " | ".join(row) + " |")
        w("")

    # ------------------------------------------------------------------ uWebSockets
    uws_section(w, cells, scenarios, servers, meta)

    # ------------------------------------------------------------------ compression
    compression_section(w, cells, scenarios, servers)

    # ------------------------------------------------------------------ streams
    streams_section(w, cells, scenarios, meta, groups)

    # ------------------------------------------------------------------ targets
    w("## Targets (2-core machine) and where we stand")
    w("")
    w("A target is \"met\" only if the measured value satisfies it in this run; \"MISSED\" is "
      "reported as such. Throughput ratios use msg/s medians (the load_test basis); the "
      "per-server-CPU ratio is given next to them because on this shared box the single-threaded "
      "generator, not the server, is often the limit.")
    w("")
    w("| Target | Measured | Status |")
    w("|---|---|---|")

    sbuilt = meta["switchboard_status"] == "built"

    def sb_cell(sc):
        return cells.get(("switchboard", sc))

    def not_measured(sc):
        if not sbuilt:
            return "not measured: Switchboard not built"
        cell = sb_cell(sc)
        if cell is None:
            return "not measured: scenario not run"
        return f"not measured: {cell.reason or 'no result'}"

    def ratio_target(sc, peer, want, label):
        sb, pc = sb_cell(sc), cells.get((peer, sc))
        if sb is None or not sb.ok:
            w(f"| {label} | — | {not_measured(sc)} |")
            return
        if pc is None or not pc.ok:
            w(f"| {label} | — | not measured: {SERVER_LABEL[peer]} {pc.reason if pc else 'not run'} |")
            return
        a, b = sb.m("msgs_per_sec"), pc.m("msgs_per_sec")
        ca, cb = sb.m("msgs_per_server_cpu_sec"), pc.m("msgs_per_server_cpu_sec")
        r = a / b if b else None
        rc = ca / cb if (ca and cb) else None
        measured = (f"{r:.2f}× ({fmt_num(a)} vs {fmt_num(b)} msg/s); per server CPU-s "
                    + (f"{rc:.2f}×" if rc else "—"))
        status = "met" if r is not None and r >= want else "**MISSED**"
        w(f"| {label} | {measured} | {status} |")

    ratio_target("echo_20", "fastwebsockets", 1.0, "Echo 100×20 B ≥ 1.0× fastwebsockets")
    ratio_target("echo_20", "tungstenite", 1.3, "Echo 100×20 B ≥ 1.3× tokio-tungstenite")
    ratio_target("echo_16k", "fastwebsockets", 0.95, "Echo 500×16 KiB ≥ 0.95× fastwebsockets")
    ratio_target("echo_16k", "tungstenite", 1.5, "Echo 500×16 KiB ≥ 1.5× tokio-tungstenite")

    # Pipelined vs own unpipelined.
    label = "Pipelined echo (16 in flight) ≥ 3× our own unpipelined (per core)"
    sp, s1 = sb_cell("echo_pipe16"), sb_cell("echo_20")
    if sp is None or s1 is None or not sp.ok or not s1.ok:
        w(f"| {label} | — | {not_measured('echo_pipe16' if (sp is None or not sp.ok) else 'echo_20')} |")
    else:
        a, b = sp.m("msgs_per_server_cpu_sec"), s1.m("msgs_per_server_cpu_sec")
        ra, rb = sp.m("msgs_per_sec"), s1.m("msgs_per_sec")
        r = a / b if (a and b) else None
        status = "met" if r is not None and r >= 3 else "**MISSED**"
        w(f"| {label} | {r:.2f}× per server CPU-s ({fmt_num(a)} vs {fmt_num(b)}); raw {ra / rb:.2f}× "
          f"({fmt_num(ra)} vs {fmt_num(rb)} msg/s) | {status} |" if r else f"| {label} | — | not measured: no CPU sample |")

    def per_cpu_target(sc, key, want, label, unit):
        cell = sb_cell(sc)
        if cell is None or not cell.ok:
            w(f"| {label} | — | {not_measured(sc)} |")
            return
        v = cell.m(key)
        status = "met" if v is not None and v >= want else "**MISSED**"
        w(f"| {label} | {fmt_num(v)} {unit} | {status} |")

    per_cpu_target("fanout", "deliveries_per_server_cpu_sec", 200_000,
                   "Fan-out one publish → N ≥ 200k deliveries/s per server core", "deliveries per server CPU-s")
    per_cpu_target("a2a", "deliveries_per_server_cpu_sec", 4_000_000,
                   "All-to-all ≥ 4M deliveries/s per server core", "deliveries per server CPU-s")

    label = "Idle ≤ 8 KiB user-space memory per connection"
    cell = sb_cell("idle")
    if cell is None or not cell.ok:
        w(f"| {label} | — | {not_measured('idle')} |")
    else:
        v = cell.m("bytes_per_conn")
        status = "met" if v is not None and v <= 8192 else "**MISSED**"
        w(f"| {label} | {fmt_num(v)} B per connection (VmRSS) | {status} |")

    if "idle_deflate" in scenarios:
        label = "Idle with permessage-deflate agreed ≤ 16 KiB user-space memory per connection"
        cell = sb_cell("idle_deflate")
        if cell is None or not cell.ok:
            w(f"| {label} | — | {not_measured('idle_deflate')} |")
        else:
            v = cell.m("bytes_per_conn")
            status = "met" if v is not None and v <= 16384 else "**MISSED**"
            w(f"| {label} | {fmt_num(v)} B per connection (VmRSS; deflate agreed on "
              f"{deflate_agreed(cell)}) | {status} |")

    per_cpu_target("storm", "handshakes_per_server_cpu_sec", 30_000,
                   "Handshakes ≥ 30k per server CPU-second (no auth)", "handshakes per server CPU-s")
    per_cpu_target("storm_hs256", "handshakes_per_server_cpu_sec", 28_000,
                   "Handshakes ≥ 28k per server CPU-second with HS256", "handshakes per server CPU-s")
    per_cpu_target("storm_rs256", "handshakes_per_server_cpu_sec", 18_000,
                   "Handshakes ≥ 18k per server CPU-second with RS256", "handshakes per server CPU-s")
    per_cpu_target("fanout_10k", "deliveries_per_server_cpu_sec", 200_000,
                   "Fan-out one publish → 10,000 ≥ 200k deliveries/s per server core", "deliveries per server CPU-s")

    label = "Last delivery to 10,000 subscribers within 50 ms (one message at a time, p99)"
    cell = sb_cell("fanout_10k_r10")
    if cell is None or not cell.ok:
        w(f"| {label} | — | {not_measured('fanout_10k_r10')} |")
    else:
        p50, p99 = cell.m("last_subscriber_latency", "p50_us"), cell.m("last_subscriber_latency", "p99_us")
        status = "met" if p99 is not None and p99 <= 50_000 else "**MISSED**"
        w(f"| {label} | last subscriber p50 {fmt_us(p50)}, p99 {fmt_us(p99)} | {status} |")

    label = "Through Redis: p99 < 5 ms at 1,000 publishes/s"
    cell = sb_cell("xinst_r1000")
    if cell is None or not cell.ok:
        w(f"| {label} | — | {not_measured('xinst_r1000')} |")
    else:
        p99 = cell.m("latency", "p99_us")
        rate = cell.m("published") / cell.m("duration_s") if cell.m("duration_s") else None
        status = "met" if p99 is not None and p99 < 5_000 else "**MISSED**"
        w(f"| {label} | p99 {fmt_us(p99)} over every subscriber (half of them across Redis), "
          f"p50 {fmt_us(cell.m('latency', 'p50_us'))}; {fmt_num(rate)} publishes/s | {status} |")

    label = "Memory flat across a long run"
    verdict = soak_verdict(sb_cell("soak"))
    if verdict is None:
        w(f"| {label} | — | {not_measured('soak')} |")
    else:
        w(f"| {label} | {verdict[0]} | {verdict[1]} |")
    for label, measured, status in stream_targets(cells):
        w(f"| {label} | {measured} | {status} |")
    w("")
    w("For reference, the same per-core figures for the peers in this run:")
    w("")
    w("| Peer | fan-out deliveries per server CPU-s | all-to-all deliveries per server CPU-s | idle bytes/conn | handshakes per server CPU-s |")
    w("|---|---|---|---|---|")
    for p in peers:
        f = cells.get((p, "fanout"))
        a = cells.get((p, "a2a"))
        i = cells.get((p, "idle"))
        s = cells.get((p, "storm"))
        def v(cell, key):
            if cell is None:
                return "—"
            if not cell.ok:
                return cell.reason or "—"
            return fmt_num(cell.m(key))
        w(f"| {SERVER_LABEL.get(p, p)} | {v(f, 'deliveries_per_server_cpu_sec')} | {v(a, 'deliveries_per_server_cpu_sec')} "
          f"| {v(i, 'bytes_per_conn')} | {v(s, 'handshakes_per_server_cpu_sec')} |")
    w("")

    # ------------------------------------------------------------------ analysis
    # Hand-written reading of the numbers (bench/analysis.md), kept with the script so that
    # a regenerated report keeps it; it names the run it was written against.
    import os
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        w(open(analysis).read().rstrip())
        w("")

    # ------------------------------------------------------------------ research reference
    w("## Reference figures from the research notes")
    w("")
    w("`/work/shared/research/stack-and-performance.md` section 6 measured, on a 2 vCPU KVM guest "
      "of this machine class (Zen 5 there; this run's CPU is listed above), with the same pinning "
      "and load_test semantics: **fastwebsockets echo 100 × 20 B ≈ 196k msg/s** (195k per server "
      "CPU-second), 500 × 16 KiB ≈ 122k msg/s; tokio-tungstenite (default config) 151k and 75k; "
      "idle memory 5,818 B/conn for fastwebsockets and 133,625 B/conn for tokio-tungstenite; "
      "handshakes 35.7k per server CPU-second for fastwebsockets. Those runs were also on a shared "
      "VM; compare ratios, not absolute numbers.")
    w("")

    # ------------------------------------------------------------------ commands
    w("## Exact commands")
    w("")
    w("Whole run: `bench/run" + (" --quick" if quick else "") + "` (options: `--reps N`, "
      "`--duration S`, `--servers`, `--scenarios`, `--out`). It builds with "
      "`cargo build --release -p switchboard-bench` and `cargo build --release -p switchboard-gateway`, "
      "and runs `npm ci` in `bench/peers/node`.")
    w("")
    w("Servers (PORT is a free loopback port picked per run):")
    w("")
    w("```sh record")
    w("taskset -c 0 target/release/switchboard serve --listen 127.0.0.1:PORT        # echo at /ws/echo")
    w("taskset -c 0 target/release/peer-fastwebsockets --listen 127.0.0.1:PORT")
    w("taskset -c 0 target/release/peer-tungstenite --listen 127.0.0.1:PORT")
    w("taskset -c 0 node bench/peers/node/server.js --listen 127.0.0.1:PORT")
    w("taskset -c 0 target/release/peer-uws --listen 127.0.0.1:PORT            # bench/peers/uws/build")
    w("```")
    w("")
    w("Generator, per scenario (as run for fastwebsockets; the other servers differ only in PORT):")
    w("")
    w("```sh record")
    shown = set()
    for sc in [s for s in scenarios if s not in STREAM_SCENARIOS]:
        for sv in ["fastwebsockets"] + servers:
            for r in groups.get((sv, sc), []):
                cmd = r.get("command")
                if cmd and sc not in shown:
                    port_free = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", cmd)
                    w(f"# {sc}")
                    w(port_free)
                    shown.add(sc)
    w("```")
    w("")
    w(f"Raw JSON of every run: `{meta['results_dir']}/` (not committed).")
    w("")
    open(out_path, "w").write("\n".join(L))


if __name__ == "__main__":
    main()
