#if os(Linux)
import Foundation
import Glibc
import Testing
@testable import ZeroMQ

/// `EpollPoller` with real sockets: several DEALERs fed by a ROUTER (echoing on its own loop thread).
@Suite struct EpollPollerTests {
    @Test func everyMessageOnEveryDealerIsSeenIncludingOneArrivingRightBeforeASend() throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, name: "test-epoll-router")
        defer { loop.close() }
        let (router, endpoint) = try loop.performAndWait { sockets in
            let socket = try Socket(sockets.context, type: .router)
            try socket.set(.linger, .zero)
            try socket.set(.routerMandatory, true)
            try socket.bind("tcp://127.0.0.1:*")
            // Echo: [id, payload] goes back to its sender at once.
            let id = sockets.add(socket, receive: .handler({ message, sockets in
                _ = try? sockets.socket(message.socket).send(message.frames)
            }))
            return (id, try socket.lastEndpoint)
        }
        let dealers = try (0..<6).map { index in
            try connectedSocket(context, .dealer, to: endpoint) { try $0.set(.routingID, text("d\(index)")) }
        }
        defer { dealers.forEach { $0.close() } }
        let poller = try EpollPoller(batch: 4)  // small: notifications also span several waits
        for dealer in dealers { try poller.add(dealer) }
        #expect(poller.count == dealers.count)
        var received: [[String]] = Array(repeating: [], count: dealers.count)
        func payloads(_ index: Int, _ prefix: String) -> [String] { received[index].filter { $0.hasPrefix(prefix) } }

        // Handshake: every dealer's hello comes back (the router now knows every routing id).
        for dealer in dealers {
            try dealer.send([text("hello")])
            poller.recheck(dealer)
        }
        try drive(poller, dealers, until: { received.allSatisfy { $0.contains("hello") } }) { received[$0].append($1) }
        #expect(received.allSatisfy { $0 == ["hello"] })

        // A burst from the router: 300 messages round-robin, each dealer gets its 50 in order.
        try loop.performAndWait { sockets in
            let socket = try sockets.socket(router)
            for number in 0..<300 { try socket.send([text("d\(number % 6)"), text("burst \(number)")]) }
        }
        try drive(poller, dealers, until: { received.map { $0.count }.reduce(0, +) >= 6 + 300 }) { received[$0].append($1) }
        for index in dealers.indices {
            #expect(payloads(index, "burst") == stride(from: index, to: 300, by: 6).map { "burst \($0)" })
        }
        #expect(try dealers[0].get(.events) == .writable)

        // The edge case: a message has arrived (the dealer's ZMQ_FD fired) and the dealer sends
        // before anyone reads its events. The send processes the socket's commands and so eats the
        // descriptor's signal; only `recheck` after the send makes the next wait look at it.
        var signalEaten = 0
        for round in 0..<4 {
            for (index, dealer) in dealers.enumerated() {
                try loop.performAndWait { sockets in try sockets.socket(router).send([text("d\(index)"), text("late \(round)")]) }
                var descriptor = pollfd(fd: try dealer.get(.fileDescriptor), events: Int16(POLLIN), revents: 0)
                try #require(poll(&descriptor, 1, 30_000) == 1, "the dealer's ZMQ_FD never signalled the message")
                usleep(2_000)  // libzmq processes commands on a send only every ~1 ms (rdtsc throttle)
                try dealer.send([text("after \(round)")])
                poller.recheck(dealer)
                if poll(&descriptor, 1, 0) == 0 { signalEaten += 1 }
                try drive(poller, dealers, until: { payloads(index, "late").count == round + 1 }) { received[$0].append($1) }
                try #require(payloads(index, "late").last == "late \(round)")
            }
        }
        // The scenario above really happened (else this test would not cover the edge case).
        #expect(signalEaten > 0)
        try drive(poller, dealers, until: { dealers.indices.allSatisfy { payloads($0, "after").count == 4 } }) { received[$0].append($1) }
        #expect(dealers.indices.allSatisfy { payloads($0, "after") == (0..<4).map { "after \($0)" } })

        // Ping-pong like the benchmark's fleet: each reply is answered at once (a send right after
        // receives), 60 round trips per dealer, none lost.
        var pongs = Array(repeating: 0, count: dealers.count)
        for dealer in dealers {
            try dealer.send([text("ping 0")])
            poller.recheck(dealer)
        }
        try drive(poller, dealers, until: { pongs.allSatisfy { $0 == 60 } }) { index, payload in
            guard payload.hasPrefix("ping ") else { return received[index].append(payload) }
            #expect(payload == "ping \(pongs[index])")
            pongs[index] += 1
            if pongs[index] < 60 {
                try dealers[index].send([text("ping \(pongs[index])")])
                poller.recheck(dealers[index])
            }
        }
        #expect(pongs == Array(repeating: 60, count: dealers.count))

        // Nothing is left unread, and a removed socket is no longer reported.
        #expect(try poller.wait(timeout: .zero).isEmpty)
        poller.remove(dealers[0])
        #expect(poller.count == dealers.count - 1)
        try loop.performAndWait { sockets in try sockets.socket(router).send([text("d0"), text("unseen")]) }
        #expect(try dealers[0].receive(timeout: .seconds(30)) == [text("unseen")])
    }

    /// Runs the poller until `done` (or 30 s, generous for a loaded machine), draining every socket
    /// it returns and handing each message's text to `handle` with its dealer's index.
    private func drive(_ poller: EpollPoller, _ dealers: [Socket], until done: () -> Bool,
                       _ handle: (Int, String) throws -> Void) throws {
        let index = Dictionary(uniqueKeysWithValues: dealers.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
        let deadline = ContinuousClock.now + .seconds(30)
        while !done() && ContinuousClock.now < deadline {
            for socket in try poller.wait(timeout: .milliseconds(500)) {
                let dealer = try #require(index[ObjectIdentifier(socket)])
                while let frames = try socket.receive(dontWait: true) {
                    try handle(dealer, String(decoding: frames.joined(), as: UTF8.self))
                }
            }
        }
    }
}
#endif
