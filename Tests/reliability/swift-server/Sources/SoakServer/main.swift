// SoakServer: a small HTTP/1.1 server on SwiftNIO for allocator soak tests.
//
//   SoakServer PORT
//
// Listens on 127.0.0.1:PORT with System.coreCount event-loop threads.
//   GET  /item/<n>  deterministic JSON-like body (a few hundred bytes to a few
//                   KiB) built with String, Array and Dictionary work
//   POST /echo      the request body, unchanged
//   GET  /health    "ok"
// Anything else answers 404.

import NIOCore
import NIOHTTP1
import NIOPosix

/// Builds the body for /item/<n>. Deterministic for a given n: the same bytes
/// whatever the allocator, the thread or the order of requests.
func itemBody(_ n: Int) -> String {
    let m = n < 0 ? -n : n

    // Array work: tags and a list of numbers.
    var tags: [String] = []
    tags.reserveCapacity(4)
    for i in 0..<(4 + m % 40) {
        tags.append("tag-\((m &* 31 &+ i &* 17) % 997)")
    }
    var values: [Int] = []
    for i in 0..<(8 + m % 64) {
        values.append((m &* 2654435761 &+ i &* 40503) % 1_000_003)
    }
    values.sort()

    // Dictionary work: attributes, emitted in sorted key order.
    var attrs: [String: Int] = [:]
    for i in 0..<(1 + m % 24) {
        attrs["attr-\(i)-\(m % 13)"] = (m &* 7919 &+ i &* 104729) % 100_003
    }
    var counts: [String: Int] = [:]
    for t in tags { counts[t, default: 0] += 1 }

    // String work.
    var s = "{\"id\":\(n),\"name\":\"item-\(n)\",\"tags\":["
    s += tags.map { "\"\($0)\"" }.joined(separator: ",")
    s += "],\"values\":["
    s += values.map { String($0) }.joined(separator: ",")
    s += "],\"attrs\":{"
    s += attrs.keys.sorted().map { "\"\($0)\":\(attrs[$0]!)" }.joined(separator: ",")
    s += "},\"distinct_tags\":\(counts.count),\"desc\":\""
    let word = "lorem-\(m % 10)-ipsum "
    s += String(repeating: word, count: 4 + m % 120)
    s += "\",\"upper\":\"\("item number \(n)".uppercased())\"}"
    return s
}

final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var body: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = context.channel.allocator.buffer(capacity: 0)
        case .body(var chunk):
            body?.writeBuffer(&chunk)
        case .end:
            guard let h = head else { return }
            let reqBody = body ?? context.channel.allocator.buffer(capacity: 0)
            head = nil
            body = nil
            respond(context: context, head: h, body: reqBody)
        }
    }

    private func respond(context: ChannelHandlerContext, head h: HTTPRequestHead, body reqBody: ByteBuffer) {
        var status = HTTPResponseStatus.ok
        var out: ByteBuffer
        var contentType = "application/json"
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri

        if h.method == .GET, path.hasPrefix("/item/"), let n = Int(path.dropFirst(6)) {
            out = context.channel.allocator.buffer(string: itemBody(n))
        } else if h.method == .POST, path == "/echo" {
            out = reqBody
            contentType = "application/octet-stream"
        } else if h.method == .GET, path == "/health" {
            out = context.channel.allocator.buffer(string: "ok")
            contentType = "text/plain"
        } else {
            status = .notFound
            out = context.channel.allocator.buffer(string: "not found")
            contentType = "text/plain"
        }

        let keepAlive = h.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(out.readableBytes))
        if !keepAlive { headers.add(name: "Connection", value: "close") }

        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(out))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

let args = CommandLine.arguments
guard args.count >= 2, let port = Int(args[1]), port > 0, port < 65536 else {
    print("usage: SoakServer PORT")
    exit(2)
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 512)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
            channel.pipeline.addHandler(HTTPHandler())
        }
    }
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)

let serverChannel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("SoakServer listening on 127.0.0.1:\(port) with \(System.coreCount) event loops")
fflush(stdout)
try serverChannel.closeFuture.wait()
try group.syncShutdownGracefully()
