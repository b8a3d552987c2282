import Foundation
import Logging
import NIOPosix

/// Keeps the bundle cache in step with the models folder, and publishes uploads.
///
/// Layout: `<models>/.kedge-bundles/<name>/<hash>/` holds one converted bundle, named by its content hash so
/// that the bytes behind a path (and a URL) never change; `<name>/current.json` says which hash is current
/// and which source (by content hash) it came from, so a restart reconverts nothing. Conversions happen in
/// `.kedge-bundles/.tmp/` and reach their final place by one rename: no reader ever sees half a bundle.
actor ModelStore {
    let modelsRoot: String
    let cacheRoot: String
    let converter: any ModelConverter
    let catalog: ModelCatalog
    let logger: Logger
    /// A source is converted once it has not changed for this long (a file being copied in is left alone).
    let settleTime: TimeInterval
    /// Replaced bundle folders are deleted this long after they stop being current (requests in flight).
    let retireAfter: TimeInterval

    private var entries: [String: ModelEntry] = [:]
    private var rejected: [String: ModelEntry] = [:]
    private var cascades: [String: CascadeEntry] = [:]
    private var lastSeenSignature: [String: String] = [:]
    private var retired: [(path: String, since: Date)] = []
    private var started = false
    private let gate = SerialGate()

    init(
        modelsDirectory: String, converter: any ModelConverter, catalog: ModelCatalog, logger: Logger,
        settleTime: TimeInterval = 1.5, retireAfter: TimeInterval = 60
    ) throws {
        try FileManager.default.createDirectory(atPath: modelsDirectory, withIntermediateDirectories: true)
        guard let real = PathSafety.realPath(modelsDirectory) else {
            throw ConversionError("models folder \(modelsDirectory) cannot be opened")
        }
        modelsRoot = real
        cacheRoot = real + "/.kedge-bundles"
        try FileManager.default.createDirectory(atPath: cacheRoot + "/.tmp", withIntermediateDirectories: true)
        // The cache ignores itself, so a models folder inside a checkout stays clean.
        if !FileManager.default.fileExists(atPath: cacheRoot + "/.gitignore") {
            try? "# kedge serve's bundle cache: rebuilt from the model files beside it\n*\n".write(
                toFile: cacheRoot + "/.gitignore", atomically: true, encoding: .utf8)
        }
        self.converter = converter
        self.catalog = catalog
        self.logger = logger
        self.settleTime = settleTime
        self.retireAfter = retireAfter
    }

    // MARK: watching

    /// One pass over the models folder: new and changed sources are converted (one at a time), removed ones
    /// forgotten. Everything before the first `await` runs as one step, so it never interleaves with an
    /// upload's publication.
    /// With `convert: false` (the pass before the socket opens) sources without a ready bundle in the cache
    /// are only listed as queued, so the server starts listening without waiting for conversions.
    func scan(convert: Bool = true) async {
        let found = ModelSources.scan(realRoot: modelsRoot)
        if !started {
            started = true
            removeLeftovers(keeping: Set(found.items.map(\.name)))
        }
        deleteRetired()
        cascades = Dictionary(
            found.cascades.map {
                (
                    $0.name,
                    CascadeEntry(
                        name: $0.name, file: $0.file, path: $0.path, sampleFile: $0.sampleFile, samplePath: $0.samplePath)
                )
            },
            uniquingKeysWith: { a, _ in a })

        var byName: [String: SourceItem] = [:]
        var newRejected: [String: ModelEntry] = [:]
        for r in found.rejected {
            newRejected[r.source] = ModelEntry(
                name: r.source, kind: .converted, source: r.source, status: .error, error: r.reason, updated: Date())
        }
        for item in found.items {
            if let first = byName[item.name] {
                newRejected[item.source] = ModelEntry(
                    name: item.source, kind: item.kind, source: item.source, status: .error,
                    error: "\(first.source) already provides the model \(item.name); rename one of them",
                    updated: Date())
                continue
            }
            byName[item.name] = item
        }
        for (key, old) in rejected where newRejected[key] != nil {
            newRejected[key]!.updated = old.error == newRejected[key]!.error ? old.updated : Date()
        }
        rejected = newRejected
        for name in entries.keys where byName[name] == nil {
            logger.info("model removed", metadata: ["model": "\(name)"])
            entries[name] = nil
            lastSeenSignature[name] = nil
            removeCacheFolder(name)
        }
        publish()

        for item in byName.values.sorted(by: { $0.name < $1.name }) {
            if Task.isCancelled { return }
            await process(item, convert: convert)
        }
    }

    private func process(_ item: SourceItem, convert: Bool) async {
        if let e = entries[item.name], e.signature == item.signature, e.source == item.source { return }
        // Wait until the source stops changing (two scans agree, or it is old enough).
        let settled =
            lastSeenSignature[item.name] == item.signature
            || Date().timeIntervalSince(item.newestModification) >= settleTime
        lastSeenSignature[item.name] = item.signature
        guard settled else {
            // Listed at once as queued, converted once it holds still.
            if entries[item.name] == nil, item.kind == .converted {
                entries[item.name] = ModelEntry(
                    name: item.name, kind: .converted, source: item.source, status: .converting, updated: Date())
                publish()
            }
            return
        }

        switch item.kind {
        case .bundle:
            let result = await offload { try BundleInfo.inspect(directory: item.path) }
            // The folder may have changed while it was hashed: the next scan sees the new signature.
            switch result {
            case .success(let info):
                if entries[item.name]?.bundle != info {
                    logger.info("bundle ready", metadata: ["model": "\(item.name)", "hash": "\(info.hash)"])
                }
                entries[item.name] = ModelEntry(
                    name: item.name, kind: .bundle, source: item.source, status: .ready, bundle: info,
                    signature: item.signature, updated: Date())
            case .failure(let error):
                logger.warning("bundle unusable", metadata: ["model": "\(item.name)", "error": "\(error)"])
                entries[item.name] = ModelEntry(
                    name: item.name, kind: .bundle, source: item.source, status: .error, error: "\(error)",
                    signature: item.signature, updated: Date())
            }
            publish()
        case .converted:
            await convertSource(item, allowConversion: convert)
        }
    }

    private func convertSource(_ item: SourceItem, allowConversion: Bool) async {
        let shaResult = await offload { try ModelSources.contentHash(item.path) }
        guard case .success(let sha) = shaResult else { return }
        if var e = entries[item.name], e.sourceSHA256 == sha, e.source == item.source, e.status != .converting {
            e.signature = item.signature  // touched, not changed
            entries[item.name] = e
            return
        }
        if let stamp = readStamp(item.name), stamp.source == item.source, stamp.sourceSHA256 == sha,
            let bundle = stamp.bundle(in: cacheRoot + "/" + item.name)
        {
            entries[item.name] = ModelEntry(
                name: item.name, kind: .converted, source: item.source, status: .ready, bundle: bundle,
                signature: item.signature, sourceSHA256: sha, updated: Date())
            publish()
            return
        }

        guard allowConversion else {
            // Queued: no signature recorded, so the next scan converts it.
            var queued =
                entries[item.name]
                ?? ModelEntry(name: item.name, kind: .converted, source: item.source, status: .converting, updated: Date())
            queued.status = .converting
            queued.signature = nil
            entries[item.name] = queued
            publish()
            return
        }
        var entry =
            entries[item.name]
            ?? ModelEntry(name: item.name, kind: .converted, source: item.source, status: .converting, updated: Date())
        entry.status = .converting
        entry.error = nil
        entry.source = item.source
        entries[item.name] = entry
        publish()
        logger.info("converting", metadata: ["model": "\(item.name)", "source": "\(item.source)"])

        let result = await convert(name: item.name, input: item.path)
        // Dropped or replaced while it converted: this result is stale.
        guard let current = entries[item.name], current.source == item.source else {
            discard(result)
            return
        }
        let nowSignature = ModelSources.scan(realRoot: modelsRoot).items.first { $0.source == item.source }?.signature
        guard nowSignature == item.signature else {
            discard(result)
            lastSeenSignature[item.name] = nil
            return
        }
        switch result {
        case .success(let staged):
            do {
                let bundle = try publishStaged(staged, name: item.name, source: item.source, sourceSHA256: sha)
                entries[item.name] = ModelEntry(
                    name: item.name, kind: .converted, source: item.source, status: .ready, bundle: bundle,
                    signature: item.signature, sourceSHA256: sha, updated: Date())
                logger.info("model ready", metadata: ["model": "\(item.name)", "hash": "\(bundle.hash)"])
            } catch {
                fail(item, sha: sha, error: "\(error)")
            }
        case .failure(let error):
            fail(item, sha: sha, error: error.message)
        }
        publish()
    }

    private func fail(_ item: SourceItem, sha: String, error: String) {
        logger.warning("conversion failed", metadata: ["model": "\(item.name)", "error": "\(error)"])
        var e = entries[item.name]!
        e.status = .error
        e.error = error
        e.signature = item.signature
        e.sourceSHA256 = sha
        e.updated = Date()
        entries[item.name] = e
    }

    // MARK: uploads

    enum UploadError: Error {
        case conflict(String)
        case conversion(String)
    }

    /// Converts an uploaded file (already in `.tmp`) and, when that works, publishes its bundle and moves
    /// the file into the models folder as `<name>.<ext>`, replacing an earlier upload of the same name.
    func upload(name: String, ext: String, stagedFile: String) async throws(UploadError) -> ModelEntry {
        let fileName = "\(name).\(ext)"
        try checkUploadConflict(name: name, fileName: fileName)
        let sha: String
        switch await offload({ try SHA256.hexDigest(ofFile: stagedFile) }) {
        case .success(let s): sha = s
        case .failure(let e): throw .conversion(e.message)
        }
        let result = await convert(name: name, input: stagedFile)
        let staged: StagedBundle
        switch result {
        case .success(let s): staged = s
        case .failure(let e):
            logger.warning("upload failed to convert", metadata: ["model": "\(name)", "error": "\(e.message)"])
            throw .conversion(e.message)
        }
        // From here on no await: publication and the move happen as one step for the watcher.
        do {
            try checkUploadConflict(name: name, fileName: fileName)
        } catch {
            discard(.success(staged))
            throw error
        }
        do {
            let bundle = try publishStaged(staged, name: name, source: fileName, sourceSHA256: sha)
            let target = modelsRoot + "/" + fileName
            guard rename(stagedFile, target) == 0 else {
                throw ConversionError("cannot move the upload into the models folder: \(String(cString: strerror(errno)))")
            }
            let signature = FileFingerprint.of(target)?.signature
            let entry = ModelEntry(
                name: name, kind: .converted, source: fileName, status: .ready, bundle: bundle, signature: signature,
                sourceSHA256: sha, updated: Date())
            entries[name] = entry
            lastSeenSignature[name] = signature
            publish()
            logger.info("upload published", metadata: ["model": "\(name)", "hash": "\(bundle.hash)"])
            return entry
        } catch {
            throw .conversion("\(error)")
        }
    }

    private func checkUploadConflict(name: String, fileName: String) throws(UploadError) {
        if let e = entries[name], e.source != fileName {
            throw .conflict("the model \(name) comes from \(e.source); remove it or upload under another name")
        }
        for item in ModelSources.scan(realRoot: modelsRoot).items where item.name == name && item.source != fileName {
            throw .conflict("the model \(name) comes from \(item.source); remove it or upload under another name")
        }
    }

    /// A fresh private folder below `.kedge-bundles/.tmp` (same file system as the cache: renames are atomic).
    func makeStagingFolder() throws -> String {
        let dir = cacheRoot + "/.tmp/" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        return dir
    }

    // MARK: converting and publishing

    struct StagedBundle: Sendable {
        var folder: String
        var info: BundleInfo
    }

    private func convert(name: String, input: String) async -> Result<StagedBundle, ConversionError> {
        await gate.acquire()
        let result = await convertHoldingGate(input: input)
        await gate.release()
        return result
    }

    private func convertHoldingGate(input: String) async -> Result<StagedBundle, ConversionError> {
        let job: String
        do {
            job = try makeStagingFolder()
        } catch {
            return .failure(ConversionError("cannot create a staging folder: \(error)"))
        }
        let out = job + "/bundle"
        do {
            try await converter.convert(input: input, outputDirectory: out)
        } catch {
            try? FileManager.default.removeItem(atPath: job)
            return .failure(ConversionError((error as? ConversionError)?.message ?? "\(error)"))
        }
        let inspected = await offload { try BundleInfo.inspect(directory: out) }
        switch inspected {
        case .success(let info):
            return .success(StagedBundle(folder: out, info: info))
        case .failure(let e):
            try? FileManager.default.removeItem(atPath: job)
            return .failure(ConversionError("the converter wrote an unusable bundle: \(e.message)"))
        }
    }

    /// Moves a staged bundle to `<name>/<hash>` (one rename) and records it as current.
    private func publishStaged(_ staged: StagedBundle, name: String, source: String, sourceSHA256: String) throws
        -> BundleInfo
    {
        let job = (staged.folder as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: job) }
        let nameDir = cacheRoot + "/" + name
        try FileManager.default.createDirectory(atPath: nameDir, withIntermediateDirectories: true)
        let target = nameDir + "/" + staged.info.hash
        if !FileManager.default.fileExists(atPath: target) {
            guard rename(staged.folder, target) == 0 else {
                throw ConversionError("cannot publish the bundle: \(String(cString: strerror(errno)))")
            }
        }
        var info = staged.info
        info.directory = PathSafety.realPath(target) ?? target
        let previous = entries[name]?.bundle?.directory
        try writeStamp(name, Stamp(source: source, sourceSHA256: sourceSHA256, bundle: info))
        if let previous, previous != info.directory { retire(previous) }
        return info
    }

    private func discard(_ result: Result<StagedBundle, ConversionError>) {
        if case .success(let s) = result {
            try? FileManager.default.removeItem(atPath: (s.folder as NSString).deletingLastPathComponent)
        }
    }

    // MARK: stamps and housekeeping

    struct Stamp: Codable {
        var source: String
        var sourceSHA256: String
        var bundle: BundleInfo

        /// The recorded bundle if its folder is still there with the recorded sizes.
        func bundle(in nameDir: String) -> BundleInfo? {
            var b = bundle
            let dir = nameDir + "/" + b.hash
            guard let real = PathSafety.realPath(dir) else { return nil }
            for f in b.files where FileFingerprint.of(real + "/" + f.name)?.size != f.size { return nil }
            b.directory = real
            return b
        }
    }

    private func readStamp(_ name: String) -> Stamp? {
        guard let data = FileManager.default.contents(atPath: cacheRoot + "/" + name + "/current.json") else {
            return nil
        }
        return try? JSONDecoder().decode(Stamp.self, from: data)
    }

    private func writeStamp(_ name: String, _ stamp: Stamp) throws {
        let path = cacheRoot + "/" + name + "/current.json"
        let tmp = path + ".tmp"
        try JSONOutput.encode(stamp).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw ConversionError("cannot write \(path)") }
    }

    private func retire(_ directory: String) {
        retired.append((directory, Date()))
    }

    private func deleteRetired() {
        let now = Date()
        retired.removeAll { r in
            guard now.timeIntervalSince(r.since) >= retireAfter else { return false }
            if !entries.values.contains(where: { $0.bundle?.directory == r.path }) {
                try? FileManager.default.removeItem(atPath: r.path)
            }
            return true
        }
    }

    private func removeCacheFolder(_ name: String) {
        guard ModelName.isValid(name) else { return }
        try? FileManager.default.removeItem(atPath: cacheRoot + "/" + name)
    }

    /// At start: staging leftovers of a previous run, cache folders of models that are gone, and bundle
    /// versions that are no longer current.
    private func removeLeftovers(keeping names: Set<String>) {
        let fm = FileManager.default
        for job in (try? fm.contentsOfDirectory(atPath: cacheRoot + "/.tmp")) ?? [] {
            try? fm.removeItem(atPath: cacheRoot + "/.tmp/" + job)
        }
        for name in (try? fm.contentsOfDirectory(atPath: cacheRoot)) ?? [] where !name.hasPrefix(".") {
            guard names.contains(name), let stamp = readStamp(name) else {
                try? fm.removeItem(atPath: cacheRoot + "/" + name)
                continue
            }
            for version in (try? fm.contentsOfDirectory(atPath: cacheRoot + "/" + name)) ?? []
            where version != stamp.bundle.hash && version != "current.json" {
                try? fm.removeItem(atPath: cacheRoot + "/" + name + "/" + version)
            }
        }
    }

    private func publish() {
        var all = entries
        for (k, v) in rejected where all[k] == nil { all[k] = v }
        catalog.update(models: all, cascades: cascades)
    }

    /// Runs blocking file work (hashing, reading) on NIO's thread pool instead of a concurrency thread.
    private nonisolated func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async -> Result<
        T, ConversionError
    > {
        do {
            return .success(try await NIOThreadPool.singleton.runIfActive(work))
        } catch let e as ConversionError {
            return .failure(e)
        } catch {
            return .failure(ConversionError("\(error)"))
        }
    }
}

/// One conversion at a time: they are CPU-bound and the machine is small.
actor SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
