// C shim for the system libzmq (4.3.x, stable API only; installed by cluster/bootstrap.sh as libzmq3-dev).
// Besides <zmq.h> it exposes, as plain constants, the error codes that zmq.h defines through macro
// arithmetic (ETERM, EFSM, …), which Swift's importer does not carry over.
#ifndef BAMBO_CZEROMQ_SHIM_H
#define BAMBO_CZEROMQ_SHIM_H

#include <zmq.h>
#include <errno.h>

static const int czmq_ETERM = ETERM;
static const int czmq_EFSM = EFSM;
static const int czmq_ENOCOMPATPROTO = ENOCOMPATPROTO;
static const int czmq_EMTHREAD = EMTHREAD;
static const int czmq_EHOSTUNREACH = EHOSTUNREACH;

// Linux epoll, for EpollPoller (waiting on many sockets' ZMQ_FD); Swift's Glibc module leaves it out.
#if defined(__linux__)
#include <sys/epoll.h>
#endif

#endif
