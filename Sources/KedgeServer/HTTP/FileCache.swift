import CompressNIO
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What identifies one version of a file on disk without reading it.
struct FileFingerprint: Hashable, Sendable, Codable {
    var device: UInt64
    var inode: UInt64
    var size: Int
    var modifiedNanoseconds: Int64

    static func of(_ path: String) -> FileFingerprint? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileFingerprint(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int(st.st_size),
            modifiedNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }
}

/// A representation ready to serve: its bytes in memory (small files, API bodies) or a file to stream.
struct ServedContent: Sendable {
    var path: String?
    var size: Int
    var sha256: String
    var bytes: ByteBuffer?
    var contentType: String

    var etag: String { "\"\(sha256.prefix(32))\"" }
    var gzipETag: String { "\"\(sha256.prefix(32))-gz\"" }

    static func memory(_ data: Data, contentType: String) -> ServedContent {
        ServedContent(
            path: nil, size: data.count, sha256: SHA256.hexDigest(data), bytes: ByteBuffer(bytes: data),
            contentType: contentType)
    }
}

/// Content hashes, small file bodies and gzip bodies, keyed so that a changed file is never served stale:
/// file entries by (device, inode, size, mtime), gzip bodies by the content hash of what they compress.
final class FileCache: Sendable {
    /// Files up to this size are held in memory after their first request.
    let memoryLimitPerFile: Int
    /// Compressible bodies up to this size are gzipped (once, then cached).
    let gzipLimit: Int
    /// Beyond this many cached bytes the cache starts over.
    let budget: Int

    fileprivate struct FileEntry {
        var fingerprint: FileFingerprint
        var sha256: String
        var bytes: ByteBuffer?
    }

    fileprivate struct State {
        var files: [String: FileEntry] = [:]
        var gzip: [String: ByteBuffer] = [:]
        var bytes = 0
    }

    private let state = NIOLockedValueBox(State())
    private let threadPool: NIOThreadPool

    init(
        memoryLimitPerFile: Int = 2 << 20, gzipLimit: Int = 32 << 20, budget: Int = 128 << 20,
        threadPool: NIOThreadPool = .singleton
    ) {
        self.memoryLimitPerFile = memoryLimitPerFile
        self.gzipLimit = gzipLimit
        self.budget = budget
        self.threadPool = threadPool
    }

    /// The served form of the file at `path` (a real path). `knownSHA256` skips hashing when the caller
    /// already knows the content (bundles record their hashes when they are published).
    func content(ofFile path: String, contentType: String, knownSHA256: String? = nil) async throws -> ServedContent? {
        guard let fp = FileFingerprint.of(path) else { return nil }
        if let e = state.withLockedValue({ $0.files[path] }), e.fingerprint == fp {
            return ServedContent(path: path, size: fp.size, sha256: e.sha256, bytes: e.bytes, contentType: contentType)
        }
        let keep = fp.size <= memoryLimitPerFile
        let (sha, bytes) = try await threadPool.runIfActive { () throws -> (String, ByteBuffer?) in
            if keep {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                return (knownSHA256 ?? SHA256.hexDigest(data), ByteBuffer(bytes: data))
            }
            return (try knownSHA256 ?? SHA256.hexDigest(ofFile: path), nil)
        }
        // The file may have changed while it was read: only a fingerprint taken after the read is trusted.
        guard let after = FileFingerprint.of(path), after == fp, bytes == nil || bytes!.readableBytes == fp.size else {
            return ServedContent(path: path, size: fp.size, sha256: sha, bytes: nil, contentType: contentType)
        }
        state.withLockedValue { s in
            s.account(bytes?.readableBytes ?? 0, budget: budget)
            s.files[path] = FileEntry(fingerprint: fp, sha256: sha, bytes: bytes)
        }
        return ServedContent(path: path, size: fp.size, sha256: sha, bytes: bytes, contentType: contentType)
    }

    /// The gzip form of `content`, or nil when it is too large to compress on request.
    func gzipped(_ content: ServedContent) async throws -> ByteBuffer? {
        guard content.size <= gzipLimit else { return nil }
        if let b = state.withLockedValue({ $0.gzip[content.sha256] }) { return b }
        let compressed = try await threadPool.runIfActive { () throws -> ByteBuffer? in
            var input: ByteBuffer
            if let b = content.bytes {
                input = b
            } else if let p = content.path {
                let data = try Data(contentsOf: URL(fileURLWithPath: p))
                // Changed on disk since it was hashed: do not file new bytes under the old hash.
                guard SHA256.hexDigest(data) == content.sha256 else { return nil }
                input = ByteBuffer(bytes: data)
            } else {
                return nil
            }
            return try input.compress(with: .gzip())
        }
        guard let compressed else { return nil }
        state.withLockedValue { s in
            s.account(compressed.readableBytes, budget: budget)
            s.gzip[content.sha256] = compressed
        }
        return compressed
    }
}

extension FileCache.State {
    fileprivate mutating func account(_ n: Int, budget: Int) {
        if bytes + n > budget {
            files.removeAll()
            gzip.removeAll()
            bytes = 0
        }
        bytes += n
    }
}
