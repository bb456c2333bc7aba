import Foundation
import Testing
@testable import ZeroMQ

@Suite struct SocketLoopTests {
    @Test func streamSocketsReachAsyncCodeAndRepliesGoBack() async throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, name: "test-router")
        let (router, endpoint) = try await loop.perform { sockets in
            let socket = try Socket(sockets.context, type: .router)
            try socket.set(.linger, .zero)
            try socket.set(.routerMandatory, true)
            try socket.bind("tcp://127.0.0.1:*")
            return (sockets.add(socket, receive: .stream), try socket.lastEndpoint)
        }
        let dealer = try connectedSocket(context, .dealer, to: endpoint) { try $0.set(.routingID, text("w1")) }
        try dealer.send([text("ready"), Data()])

        var iterator = loop.messages.makeAsyncIterator()
        let message = try #require(try await iterator.next())
        #expect(message.socket == router)
        #expect(message.frames == [text("w1"), text("ready"), Data()])
        #expect(message.peerAddress == "127.0.0.1" && message.userID == nil)
        #expect(try await loop.send([text("w1"), text("task 1")], on: router))
        #expect(try dealer.receive(timeout: .seconds(5)) == [text("task 1")])

        // Errors inside the loop come back to the caller.
        await #expect(throws: ZMQError.self) { try await loop.send([text("unknown"), text("x")], on: router) }

        loop.close()
        #expect(!loop.isRunning)
        #expect(try await iterator.next() == nil)
        await #expect(throws: SocketLoopClosedError.self) { try await loop.perform { _ in 1 } }
        dealer.close()
    }

    @Test func handlerSocketsAnswerOnTheLoopThread() throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, name: "test-echo")
        let endpoint = try loop.performAndWait { sockets in
            let socket = try Socket(sockets.context, type: .reply)
            try socket.set(.linger, .zero)
            try socket.bind("tcp://127.0.0.1:*")
            sockets.add(socket, receive: .handler({ message, sockets in
                _ = try? sockets.socket(message.socket).send([text("echo")] + message.frames)
            }))
            return try socket.lastEndpoint
        }
        let request = try connectedSocket(context, .request, to: endpoint)
        for index in 0..<20 {
            try request.send([text("\(index)"), Data()])
            #expect(try request.receive(timeout: .seconds(5)) == [text("echo"), text("\(index)"), Data()])
        }
        loop.close()
        request.close()
    }

    @Test func concurrentSendersAreSerializedByTheLoop() async throws {
        let context = try Context()
        let (pull, endpoint) = try boundSocket(context, .pull)
        let loop = try SocketLoop(context: context, name: "test-senders")
        let push = try await loop.perform { sockets in
            let socket = try Socket(sockets.context, type: .push)
            try socket.set(.linger, .seconds(1))
            try socket.set(.sendHighWaterMark, 0)
            try socket.connect(endpoint)
            return sockets.add(socket, receive: .none)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<4 {
                group.addTask {
                    for index in 0..<100 {
                        var sent = false
                        while !sent { sent = try await loop.send([text("\(sender)"), text("\(index)")], on: push) }
                    }
                }
            }
            try await group.waitForAll()
        }
        var perSender: [Data: [Data]] = [:]
        for _ in 0..<400 {
            let frames = try #require(try pull.receive(timeout: .seconds(5)))
            perSender[frames[0], default: []].append(frames[1])
        }
        #expect(perSender.count == 4)
        for (_, indices) in perSender { #expect(indices == (0..<100).map { text("\($0)") }) }  // per-sender order kept
        loop.close()
    }

    @Test func replacingASocketInsideTheLoop() async throws {
        let context = try Context()
        let (router, endpoint) = try boundSocket(context, .router)
        let loop = try SocketLoop(context: context, name: "test-replace")
        @Sendable func dealer(_ sockets: SocketLoop.Sockets, id: String) throws -> SocketLoop.SocketID {
            let socket = try Socket(sockets.context, type: .dealer)
            try socket.set(.linger, .zero)
            try socket.set(.routingID, text(id))
            try socket.connect(endpoint)
            return sockets.add(socket, receive: .stream)
        }
        let old = try await loop.perform { try dealer($0, id: "old") }
        let new = try await loop.perform { sockets in
            sockets.remove(old)
            return try dealer(sockets, id: "new")
        }
        await #expect(throws: ZMQError.self) { try await loop.send([text("x")], on: old) }
        #expect(try await loop.send([text("hi")], on: new))
        #expect(try router.receive(timeout: .seconds(5)) == [text("new"), text("hi")])
        try router.send([text("new"), text("back")])
        var iterator = loop.messages.makeAsyncIterator()
        let message = try #require(try await iterator.next())
        #expect(message.socket == new && message.frames == [text("back")])
        loop.close()
    }
}
