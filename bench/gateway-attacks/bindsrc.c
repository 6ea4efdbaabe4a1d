/* LD_PRELOAD shim: bind every outgoing IPv4 socket to BIND_SRC before connect().
 *
 * Connecting to 127.0.0.3 does not make 127.0.0.3 the source address: the loopback route
 * (`ip route get 127.0.0.3` -> `src 127.0.0.1`) picks 127.0.0.1, the attacker's address, so the
 * gateway's per-client caps would lump wrk in with the attacker. wrk has no bind option; this
 * gives it one:  BIND_SRC=127.0.0.3 LD_PRELOAD=./bindsrc.so wrk ...
 * Build: cc -shared -fPIC -O2 -o bindsrc.so bindsrc.c -ldl
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect) real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    const char *src = getenv("BIND_SRC");
    if (src && addr && addr->sa_family == AF_INET) {
        struct sockaddr_in local;
        memset(&local, 0, sizeof local);
        local.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &local.sin_addr) == 1) {
            (void)bind(fd, (struct sockaddr *)&local, sizeof local); /* fails harmlessly if already bound */
        }
    }
    return real_connect(fd, addr, len);
}
