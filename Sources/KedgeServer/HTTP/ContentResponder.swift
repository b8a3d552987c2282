import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// How long a representation may be cached.
enum CachePolicy: Sendable {
    /// Content-hashed URLs: the bytes behind the URL never change.
    case immutable
    /// Stable URLs whose content can change: cache, but revalidate with the ETag every time.
    case revalidate

    var headerValue: String {
        switch self {
        case .immutable: return "public, max-age=31536000, immutable"
        case .revalidate: return "no-cache"
        }
    }
}

/// Turns one `ServedContent` into the right response for a request: 304 on a matching If-None-Match,
/// 206/416 for byte ranges (of the identity form), gzip when the client accepts it and the type compresses.
enum ContentResponder {
    static func respond(
        to request: Request, context: some RequestContext, content: ServedContent, cache: FileCache,
        policy: CachePolicy
    ) async throws -> Response {
        let compressible = MediaTypes.isCompressible(content.contentType)
        var headers = HTTPFields()
        headers[.contentType] = content.contentType
        headers[.cacheControl] = policy.headerValue
        headers[.acceptRanges] = "bytes"
        if compressible { headers[.vary] = "Accept-Encoding" }

        let wantsGzip = compressible && acceptsGzip(request.headers[values: .acceptEncoding])
        let rangeHeader = request.method == .get ? request.headers[.range] : nil

        if let inm = request.headers[values: .ifNoneMatch].nilIfEmpty {
            let tags = parseETagList(inm)
            if tags.contains("*") || tags.contains(content.etag) || tags.contains(content.gzipETag) {
                headers[.eTag] = wantsGzip && rangeHeader == nil ? content.gzipETag : content.etag
                return Response(status: .notModified, headers: headers)
            }
        }

        if let rangeHeader {
            // If-Range with another validator asks for the whole (new) representation instead.
            let ifRange = request.headers[.ifRange]
            if ifRange == nil || ifRange == content.etag {
                switch parseRange(rangeHeader, size: content.size) {
                case .unsatisfiable:
                    headers[.contentRange] = "bytes */\(content.size)"
                    headers[.eTag] = content.etag
                    return Response(
                        status: .rangeNotSatisfiable, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: "range not satisfiable\n")))
                case .range(let r):
                    headers[.eTag] = content.etag
                    headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(content.size)"
                    return Response(
                        status: .partialContent, headers: headers,
                        body: try await body(content, range: r, context: context))
                case .ignore:
                    break
                }
            }
        }

        if wantsGzip, content.size >= 256, let gz = try await cache.gzipped(content) {
            headers[.eTag] = content.gzipETag
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: gz))
        }
        headers[.eTag] = content.etag
        return Response(status: .ok, headers: headers, body: try await body(content, range: nil, context: context))
    }

    private static func body(_ content: ServedContent, range: ClosedRange<Int>?, context: some RequestContext)
        async throws -> ResponseBody
    {
        if let bytes = content.bytes {
            guard let range else { return .init(byteBuffer: bytes) }
            return .init(byteBuffer: bytes.getSlice(at: bytes.readerIndex + range.lowerBound, length: range.count)!)
        }
        guard let path = content.path, content.size > 0 else { return .init() }
        let io = FileIO()
        if let range { return try await io.loadFile(path: path, range: range, context: context) }
        return try await io.loadFile(path: path, context: context)
    }

    // MARK: header parsing

    /// Accept-Encoding: gzip (or x-gzip, or *) with a non-zero quality.
    static func acceptsGzip(_ values: [String]) -> Bool {
        for value in values {
            for item in value.split(separator: ",") {
                let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let coding = parts.first?.lowercased(), coding == "gzip" || coding == "x-gzip" || coding == "*"
                else { continue }
                var q = 1.0
                for p in parts.dropFirst() where p.lowercased().hasPrefix("q=") {
                    q = Double(p.dropFirst(2)) ?? 0
                }
                if q > 0 { return true }
            }
        }
        return false
    }

    /// The entity tags of an If-None-Match header; weak tags compare equal to strong ones here (RFC 9110 13.1.2).
    static func parseETagList(_ values: [String]) -> Set<String> {
        var out = Set<String>()
        for value in values {
            for item in value.split(separator: ",") {
                var t = item.trimmingCharacters(in: .whitespaces)
                if t.hasPrefix("W/") { t.removeFirst(2) }
                if !t.isEmpty { out.insert(t) }
            }
        }
        return out
    }

    enum RangeResult: Equatable {
        case ignore
        case unsatisfiable
        case range(ClosedRange<Int>)
    }

    /// One `bytes=` range (first-last, first-, -suffix). Several ranges or another unit: served whole, as
    /// RFC 9110 allows; a syntactically valid range that misses the file: 416.
    static func parseRange(_ header: String, size: Int) -> RangeResult {
        let h = header.trimmingCharacters(in: .whitespaces)
        guard h.lowercased().hasPrefix("bytes=") else { return .ignore }
        let spec = h.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(",") else { return .ignore }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .ignore }
        let first = parts[0].trimmingCharacters(in: .whitespaces)
        let last = parts[1].trimmingCharacters(in: .whitespaces)
        let digits = CharacterSet(charactersIn: "0123456789")
        guard first.unicodeScalars.allSatisfy(digits.contains), last.unicodeScalars.allSatisfy(digits.contains) else {
            return .ignore
        }
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard !last.isEmpty else { return .ignore }
            let n = Int(last) ?? Int.max
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - n)...(size - 1))
        }
        guard let start = Int(first) else { return .unsatisfiable }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .range(start...(size - 1)) }
        // A last position beyond Int is still "to the end".
        let end = Int(last) ?? Int.max
        guard end >= start else { return .ignore }
        return .range(start...min(end, size - 1))
    }
}

extension Array {
    fileprivate var nilIfEmpty: Self? { isEmpty ? nil : self }
}
