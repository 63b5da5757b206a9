/*
 * LD_PRELOAD shim that sets TCP_NODELAY on every accepted socket.
 *
 * Used by scripts/bench-s3 to run a reference server that does not set
 * TCP_NODELAY itself (small responses would otherwise wait for delayed ACKs,
 * about 40 ms each, and a latency comparison would measure only that).
 *
 *   gcc -shared -fPIC -O2 -o tcp-nodelay-shim.so tcp-nodelay-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void set_nodelay(int fd)
{
    if (fd >= 0) {
        int one = 1;
        /* Fails harmlessly on non-TCP sockets (Unix sockets). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

int accept(int sockfd, struct sockaddr *addr, socklen_t *addrlen)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int fd = real(sockfd, addr, addrlen);
    set_nodelay(fd);
    return fd;
}

int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int fd = real(sockfd, addr, addrlen, flags);
    set_nodelay(fd);
    return fd;
}
