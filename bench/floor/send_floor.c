// bench/floor/send_floor.c — the kernel's floor for one publish to N idle loopback subscribers.
//
// A child process opens N TCP connections to the parent on 127.0.0.1 (TCP_NODELAY on the
// parent's ends, as every server in bench/ sets); the parent then times ROUNDS rounds of one send() of a FRAME-byte WebSocket
// frame (2-byte header + payload, unmasked, as a server sends it) to each of the N sending
// ends, one system call per recipient, no batching: the least any server that writes each
// subscriber's socket with its own system call can spend.
//
// Without --reader the child never reads (idle subscribers: the frames of all rounds fit in
// the receive buffers). With --reader the child, pinned to CPU 1, waits in epoll_wait on its
// ends and reads what arrives, as the generator's subscribers do; each send then also pays
// for waking it (on loopback the receive path and the wake-up are charged to the sender).
//
// Usage: send_floor [-n 10000] [--rounds 20] [--frame 66] [--reader] [--json]
// Pin it yourself (bench/run: taskset -c 0). Loopback only; exits when done.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/wait.h>

static int n = 10000, rounds = 20, frame = 66, use_reader = 0, json = 0;

static double clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "send_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

// The subscribers: N connections from 127.0.0.2.. (20,000 per source address, as the
// generator), then idle, or reading in epoll on CPU 1, until the parent closes `done`.
static void child(struct sockaddr_in a, int ready, int done) {
    int *c = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i] < 0) die("socket (subscriber)");
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002 + i / 20000)};
        if (bind(c[i], (struct sockaddr *)&src, sizeof src) < 0) die("bind (subscriber)");
        if (connect(c[i], (struct sockaddr *)&a, sizeof a) < 0) die("connect");
        fcntl(c[i], F_SETFL, O_NONBLOCK);
    }
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event dev = {.events = EPOLLIN, .data.u32 = 0xffffffffu};
    epoll_ctl(ep, EPOLL_CTL_ADD, done, &dev);
    if (use_reader) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(1, &set);
        sched_setaffinity(0, sizeof(set), &set);
        for (int i = 0; i < n; i++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i], &ev) < 0) die("epoll_ctl");
        }
    }
    if (write(ready, "r", 1) != 1) die("write");
    struct epoll_event evs[1024];
    char buf[4096];
    for (;;) {
        int k = epoll_wait(ep, evs, 1024, -1);
        for (int j = 0; j < k; j++) {
            if (evs[j].data.u32 == 0xffffffffu) _exit(0);
            while (read(c[evs[j].data.u32], buf, sizeof buf) > 0) {}
        }
    }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--frame") && i + 1 < argc) frame = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reader")) use_reader = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else { fprintf(stderr, "usage: send_floor [-n N] [--rounds R] [--frame B] [--reader] [--json]\n"); return 64; }
    }
    if (n < 1 || rounds < 1 || rounds > 1000 || frame < 2 || frame > 125 + 2) {
        fprintf(stderr, "send_floor: bad arguments\n");
        return 64;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) die("bind/listen");
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int rp[2], dp[2];
    if (pipe(rp) < 0 || pipe(dp) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(lfd);
        close(rp[0]);
        close(dp[1]);
        child(a, rp[1], dp[0]);
    }
    close(rp[1]);
    close(dp[0]);
    int *snd = calloc(n, sizeof(int));
    int one = 1;
    for (int i = 0; i < n; i++) {
        int s = accept(lfd, NULL, NULL);
        if (s < 0) die("accept");
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(s, F_SETFL, O_NONBLOCK);
        snd[i] = s;
    }
    char ch;
    if (read(rp[0], &ch, 1) != 1) { fprintf(stderr, "send_floor: the subscriber process failed\n"); return 1; }
    usleep(200000);
    char msg[128];
    memset(msg, 'x', sizeof msg);
    msg[0] = (char)0x81;  // FIN + text, unmasked: a server's frame
    msg[1] = (char)(frame - 2);
    double per[1000], cpu[1000];
    long failed = 0;
    for (int r = -2; r < rounds; r++) {  // two untimed warm-up rounds
        double t0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < n; i++)
            if (send(snd[i], msg, frame, MSG_NOSIGNAL) != frame) failed++;
        double t1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        if (r >= 0) {
            per[r] = (t1 - t0) / n;
            cpu[r] = (c1 - c0) / n;
        }
        usleep(100000);  // the reader (if any) catches up; one publish at a time, as fanout_10k_r10
    }
    close(dp[1]);
    waitpid(pid, NULL, 0);
    double sorted[1000];
    memcpy(sorted, per, sizeof(double) * rounds);
    qsort(sorted, rounds, sizeof(double), cmp);
    double med = rounds % 2 ? sorted[rounds / 2] : (sorted[rounds / 2 - 1] + sorted[rounds / 2]) / 2;
    double csorted[1000];
    memcpy(csorted, cpu, sizeof(double) * rounds);
    qsort(csorted, rounds, sizeof(double), cmp);
    double cmed = rounds % 2 ? csorted[rounds / 2] : (csorted[rounds / 2 - 1] + csorted[rounds / 2]) / 2;
    // Wall time per send includes whatever else ran on the core; CPU time per send (this
    // process's utime + stime, which on loopback includes the receive path) does not.
    if (json) {
        printf("{\"n\": %d, \"rounds\": %d, \"frame_bytes\": %d, \"reader\": %s, "
               "\"wall_ns_per_send_p50\": %.1f, \"wall_ns_per_send_min\": %.1f, \"wall_ns_per_send_max\": %.1f, "
               "\"cpu_ns_per_send_p50\": %.1f, \"cpu_ns_per_send_min\": %.1f, \"cpu_ns_per_send_max\": %.1f, "
               "\"floor_ms_wall_p50\": %.3f, \"floor_ms_cpu_p50\": %.3f, \"floor_ms_cpu_min\": %.3f, \"failed_sends\": %ld}\n",
               n, rounds, frame, use_reader ? "true" : "false", med, sorted[0], sorted[rounds - 1], cmed, csorted[0],
               csorted[rounds - 1], med * n / 1e6, cmed * n / 1e6, csorted[0] * n / 1e6, failed);
    } else {
        printf("send_floor: %d sends of %d B per round, %d rounds, %s: CPU %.0f ns per send (median; %.0f-%.0f), "
               "wall %.0f ns (%.0f-%.0f); floor for one publish to %d = %.1f ms of CPU (%.1f ms wall)\n",
               n, frame, rounds, use_reader ? "a reader on CPU 1 in epoll" : "idle receivers", cmed, csorted[0],
               csorted[rounds - 1], med, sorted[0], sorted[rounds - 1], n, cmed * n / 1e6, med * n / 1e6);
    }
    if (failed) fprintf(stderr, "send_floor: %ld sends did not write the whole frame\n", failed);
    return failed ? 2 : 0;
}
