import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What every response gets, errors included: errors as small JSON bodies, cross-origin isolation headers
/// (COOP same-origin + COEP require-corp, so pages can use SharedArrayBuffer and wasm threads), CORS for the
/// configured origins, and one structured log line per request.
struct EnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Origins allowed to read responses cross-origin; "*" allows any.
    let corsOrigins: [String]
    let logger: Logger

    static var coop: HTTPField.Name { HTTPField.Name("Cross-Origin-Opener-Policy")! }
    static var coep: HTTPField.Name { HTTPField.Name("Cross-Origin-Embedder-Policy")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let origin = request.headers[.origin]
        let allowedOrigin = origin.flatMap(allowOrigin)
        var response: Response
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            response = Response(status: .noContent)
            if allowedOrigin != nil {
                response.headers[.accessControlAllowMethods] = "GET, HEAD, POST, OPTIONS"
                response.headers[.accessControlAllowHeaders] = "Content-Type, Range, If-None-Match, If-Range"
                response.headers[.accessControlMaxAge] = "600"
            }
        } else {
            do {
                response = try await next(request, context)
            } catch let error as any HTTPResponseError {
                response = Self.errorResponse(error.status, message: (error as? HTTPError)?.body)
            } catch {
                logger.error(
                    "unhandled error", metadata: ["error": "\(error)", "path": "\(Self.loggable(request.uri.path))"])
                response = Self.errorResponse(.internalServerError, message: "internal error")
            }
        }

        response.headers[Self.coop] = "same-origin"
        response.headers[Self.coep] = "require-corp"
        // With CORS on, other origins' isolated pages must be able to embed these resources too.
        response.headers[.crossOriginResourcePolicy] = corsOrigins.isEmpty ? "same-origin" : "cross-origin"
        response.headers[.xContentTypeOptions] = "nosniff"
        if let allowedOrigin {
            response.headers[.accessControlAllowOrigin] = allowedOrigin
            response.headers[.accessControlExposeHeaders] =
                "ETag, Content-Length, Content-Range, Accept-Ranges, Content-Encoding"
        }
        if !corsOrigins.isEmpty, !corsOrigins.contains("*") {
            response.headers[values: .vary].append("Origin")
        }

        let elapsed = ContinuousClock.now - start
        let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)",
                "path": "\(Self.loggable(request.uri.path))",
                "status": "\(response.status.code)",
                "bytes": "\(response.headers[.contentLength] ?? "-")",
                "encoding": "\(response.headers[.contentEncoding] ?? "identity")",
                "ms": "\(String(format: "%.2f", ms))",
            ])
        return response
    }

    private func allowOrigin(_ origin: String) -> String? {
        if corsOrigins.contains("*") { return "*" }
        return corsOrigins.contains(origin) ? origin : nil
    }

    static func errorResponse(_ status: HTTPResponse.Status, message: String?) -> Response {
        let text = message ?? status.reasonPhrase
        let body = (try? JSONOutput.encode(["error": text])) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Request paths are attacker-controlled: logged truncated, control bytes escaped.
    static func loggable(_ path: String) -> String {
        var out = ""
        for scalar in path.unicodeScalars.prefix(256) {
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += String(format: "\\x%02x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return path.unicodeScalars.count > 256 ? out + "..." : out
    }
}
