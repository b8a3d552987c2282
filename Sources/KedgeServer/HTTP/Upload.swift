import Foundation
import Hummingbird
import NIOCore
import _NIOFileSystem

extension KedgeServer {
    /// `POST /api/models?name=NAME` with the model file as the body. The file is streamed to a private staging
    /// folder (at most `maxUploadBytes`), converted there by the converter (never run, never parsed here),
    /// and its bundle published by one rename. 201 with the model's /api/models entry; 400 bad name or
    /// empty body, 409 name taken by another source, 413 too large, 415 unknown format, 422 conversion failed.
    func handleUpload(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard options.uploadsEnabled else { throw HTTPError(.forbidden, message: "uploads are disabled") }
        let query = request.uri.queryParameters
        guard let rawName = query.get("name") else {
            throw HTTPError(.badRequest, message: "missing ?name=NAME")
        }
        guard ModelName.isValid(rawName) else {
            throw HTTPError(
                .badRequest, message: "invalid name: use 1-128 of A-Z a-z 0-9 _ . - and no leading dot")
        }
        var base = rawName
        var ext: String?
        if let split = ModelName.split(rawName) {
            base = split.base
            ext = split.ext
        }
        if let format = query.get("format") {
            guard ModelName.modelExtensions.contains(format.lowercased()) else {
                throw HTTPError(.unsupportedMediaType, message: "unknown format \(format)")
            }
            ext = format.lowercased()
        }
        guard ModelName.isValid(base), base != "cascade", !base.hasSuffix(".cascade") else {
            throw HTTPError(.badRequest, message: "invalid name \(rawName)")
        }
        let limit = options.maxUploadBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw HTTPError(.contentTooLarge, message: "the upload is \(declared) bytes; the limit is \(limit)")
        }

        let staging = try await store.makeStagingFolder()
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let received = staging + "/upload"
        let (count, head) = try await receive(request.body, to: received, limit: limit)
        guard count > 0 else { throw HTTPError(.badRequest, message: "empty upload") }
        guard let format = ext ?? Self.sniffFormat(head) else {
            throw HTTPError(
                .unsupportedMediaType,
                message: "cannot tell the file's format; name it NAME.h5/.keras/.json/.ubj/.bin or add &format=")
        }
        let staged = staging + "/" + base + "." + format
        guard rename(received, staged) == 0 else { throw HTTPError(.internalServerError, message: "staging failed") }

        let entry: ModelEntry
        do {
            entry = try await store.upload(name: base, ext: format, stagedFile: staged)
        } catch {
            switch error {
            case .conflict(let m): throw HTTPError(.conflict, message: m)
            case .conversion(let m): throw HTTPError(.unprocessableContent, message: "conversion failed: \(m)")
            }
        }
        let body = try JSONOutput.encode(ModelCatalog.apiModel(entry))
        return Response(
            status: .created,
            headers: [.contentType: "application/json", .cacheControl: "no-store", .location: "/api/models"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    struct UploadTooLarge: Error {}

    /// Streams the body into `path`, refusing more than `limit` bytes. Returns the size and the first bytes.
    private func receive(_ body: RequestBody, to path: String, limit: Int) async throws -> (Int, [UInt8]) {
        var count = 0
        var head: [UInt8] = []
        do {
            try await FileSystem.shared.withFileHandle(
                forWritingAt: FilePath(path), options: .newFile(replaceExisting: false)
            ) { handle in
                try await handle.withBufferedWriter { writer in
                    for try await chunk in body {
                        count += chunk.readableBytes
                        if count > limit { throw UploadTooLarge() }
                        if head.count < 16 { head += chunk.getBytes(at: chunk.readerIndex, length: min(16, chunk.readableBytes)) ?? [] }
                        _ = try await writer.write(contentsOf: chunk)
                    }
                    try await writer.flush()
                }
            }
        } catch is UploadTooLarge {
            throw HTTPError(.contentTooLarge, message: "the upload exceeds the limit of \(limit) bytes")
        }
        return (count, head)
    }

    /// The format from the first bytes: HDF5 signature, zip (.keras), JSON, UBJSON (XGBoost).
    static func sniffFormat(_ head: [UInt8]) -> String? {
        if head.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]) { return "h5" }
        if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) { return "keras" }
        guard let first = head.firstIndex(where: { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }) else { return nil }
        if head[first] == UInt8(ascii: "{") {
            // UBJSON objects start with "{" followed by a type marker, JSON with "\"" or whitespace or "}".
            let nextIndex = head.index(after: first)
            guard nextIndex < head.count else { return "json" }
            let next = head[nextIndex]
            if [UInt8(ascii: "\""), UInt8(ascii: "}"), 0x20, 0x09, 0x0a, 0x0d].contains(next) { return "json" }
            if Array("iUIlLdD$#SHTFZN".utf8).contains(next) { return "ubj" }
        }
        return nil
    }
}
