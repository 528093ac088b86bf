// uWebSockets peer for Switchboard's benchmarks (bench/run builds it with bench/peers/uws/build).
//   any path        : echo every text/binary message unchanged
//   /ws/broadcast   : every message a client sends goes to every connected broadcast client,
//                     the sender included (uWS::App::publish, which does not skip the sender)
// Usage: uws-peer --listen 127.0.0.1:PORT   (loopback only)
//
// One thread (one uWS::App, one event loop), no compression, a large maxPayloadLength, no idle
// timeout and no automatic pings, large maxBackpressure without closing on it, as the other
// peers run. The listen backlog is uSockets' own (512, hard-coded in bsd.c; the API has no knob).

#include "App.h"

#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

struct PerSocketData {};

bool loopback_host(const std::string &host) {
    if (host == "localhost" || host == "::1") return true;
    in_addr a{};
    if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
    return (ntohl(a.s_addr) >> 24) == 127;
}

[[noreturn]] void usage(const char *why) {
    std::fprintf(stderr, "uws-peer: %s\nusage: uws-peer --listen 127.0.0.1:PORT\n", why);
    std::exit(64);
}

}  // namespace

int main(int argc, char **argv) {
    std::string listen = "127.0.0.1:9004";
    for (int i = 1; i < argc; i++) {
        std::string_view a = argv[i];
        if (a == "--listen" && i + 1 < argc) {
            listen = argv[++i];
        } else if (a.rfind("--listen=", 0) == 0) {
            listen = std::string(a.substr(9));
        } else {
            usage("unknown argument");
        }
    }
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) usage("bad --listen");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = std::atoi(listen.c_str() + colon + 1);
    if (port <= 0 || port > 65535) usage("bad port");
    if (!loopback_host(host)) usage("refusing a non-loopback --listen");

    uWS::App app;
    uWS::App *appp = &app;

    auto settings = [](auto &&b) {
        b.compression = uWS::DISABLED;
        b.maxPayloadLength = 64 * 1024 * 1024;
        b.idleTimeout = 0;
        b.maxBackpressure = 1024 * 1024 * 1024;
        b.closeOnBackpressureLimit = false;
        b.resetIdleTimeoutOnSend = false;
        b.sendPingsAutomatically = false;
        b.maxLifetime = 0;
    };

    uWS::App::WebSocketBehavior<PerSocketData> echo{};
    settings(echo);
    echo.message = [](auto *ws, std::string_view message, uWS::OpCode opCode) {
        ws->send(message, opCode, false);
    };

    uWS::App::WebSocketBehavior<PerSocketData> broadcast{};
    settings(broadcast);
    broadcast.open = [](auto *ws) { ws->subscribe("broadcast"); };
    broadcast.message = [appp](auto * /*ws*/, std::string_view message, uWS::OpCode opCode) {
        appp->publish("broadcast", message, opCode, false);
    };

    app.ws<PerSocketData>("/ws/broadcast", std::move(broadcast))
        .ws<PerSocketData>("/*", std::move(echo))
        .listen(host, port, [&](auto *listen_socket) {
            if (listen_socket) {
                std::printf("peer-uws (uWebSockets v20.79.0) listening on %s:%d\n", host.c_str(), port);
                std::fflush(stdout);
            } else {
                std::fprintf(stderr, "uws-peer: cannot listen on %s:%d\n", host.c_str(), port);
                std::exit(1);
            }
        })
        .run();
    return 0;
}
