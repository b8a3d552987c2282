import CompressNIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import HummingbirdTesting
import NIOCore
import XCTest

@testable import KedgeServer

/// The same server over a real loopback socket (HummingbirdTesting `.live`), shut down gracefully at the end.
final class LiveSocketTests: XCTestCase {
    func testOverARealSocket() async throws {
        let box = try Sandbox(modelFiles: ["live.h5": "over the wire"]) { $0.pollInterval = .milliseconds(100) }
        let all = FakeBundle.weights(seed: Array("over the wire".utf8), size: 65536)
        try await box.server.makeApplication().test(.live) { client in
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
            let m = try await client.settled("live")
            XCTAssertEqual(m.status, "ready")
            let url = m.files!["model_weights.buf"]!.url
            let whole = try await client.get(url)
            XCTAssertEqual(whole.body.bytes, all)
            let part = try await client.get(url, [.range: "bytes=100-199"])
            XCTAssertEqual(part.status, .partialContent)
            XCTAssertEqual(part.body.bytes, Array(all[100..<200]))
            try await assertEqualAsync(try await client.get(url, [.range: "bytes=70000-"]).status, .rangeNotSatisfiable)
            try await assertEqualAsync(try await client.get(url, [.ifNoneMatch: whole.headers[.eTag]!]).status, .notModified)
            var gz = try await client.get(m.files!["model.json"]!.url, [.acceptEncoding: "gzip"]).body
            XCTAssertTrue(try gz.decompress(with: .gzip()).text.hasPrefix("{\"class_name\":\"Sequential\""))
            let page = try await client.get("/")
            XCTAssertEqual(page.headers[.coep], "require-corp")
            for raw in ["/../secret.txt", "/%2e%2e/secret.txt", "/%252e%252e/secret.txt", "/link-out.txt"] {
                let r = try await client.get(raw)
                XCTAssertTrue([.badRequest, .notFound].contains(r.status), raw)
                XCTAssertFalse(r.body.text.contains(Sandbox.secret), raw)
            }
            let up = try await client.executeRequest(
                uri: "/api/models?name=wire.h5", method: .post, headers: [:], body: ByteBuffer(string: "sent"))
            XCTAssertEqual(up.status, .created)
            let bad = try await client.executeRequest(
                uri: "/api/models?name=wire2.h5", method: .post, headers: [:], body: ByteBuffer(string: "BROKEN"))
            XCTAssertEqual(bad.status, .unprocessableContent)
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
        }
    }

    func testMalformedAndOversizeRequestsGet4xxAndTheServerStaysUp() async throws {
        let box = try Sandbox()
        try await box.server.makeApplication().test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let cases: [(String, [UInt8])] = [
                ("garbage request line", Array("NOT A REQUEST\r\n\r\n".utf8)),
                ("bad version", Array("GET / HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)),
                ("huge header", Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 40000))\r\n\r\n".utf8)),
                ("too many headers", Array(("GET / HTTP/1.1\r\nHost: x\r\n" + (0..<300).map { "X-\($0): y\r\n" }.joined() + "\r\n").utf8)),
                ("NUL in path", Array("GET /a\u{0}b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)),
                ("raw traversal", Array("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)),
                ("absolute path form", Array("GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)),
                ("bad content-length", Array("POST /api/models?name=x.h5 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".utf8)),
            ]
            for (label, bytes) in cases {
                let reply = RawHTTP.exchange(port: port, bytes)
                // Either a 4xx status line or a closed connection; never 2xx/5xx, never the file.
                if let status = RawHTTP.status(reply) {
                    XCTAssertTrue((400..<500).contains(status), "\(label): \(status)")
                }
                XCTAssertFalse(reply.contains("root:"), label)
            }
            try await assertEqualAsync(try await client.get("/healthz").status, .ok)
        }
    }
}

/// One request on a plain socket, for bytes no HTTP client would send.
enum RawHTTP {
    static func exchange(port: Int, _ bytes: [UInt8]) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return "" }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
            if out.count > 1 << 20 { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func status(_ reply: String) -> Int? {
        guard reply.hasPrefix("HTTP/1.1 ") else { return nil }
        return Int(reply.dropFirst(9).prefix(3))
    }
}
