import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

public enum KedgeServerVersion {
    public static let string = "0.1.0"
}

/// Everything `kedge serve` can be told.
public struct ServerOptions: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    /// Model files and bundle folders; converted bundles are cached in `<models>/.kedge-bundles`.
    public var modelsDirectory: String
    /// The pages, kedge.js and its worker, served at `/`.
    public var webDirectory: String?
    /// Origins allowed to fetch cross-origin (`*` for any); none by default.
    public var corsOrigins: [String] = []
    public var maxUploadBytes: Int = 256 << 20
    public var uploadsEnabled: Bool = true
    /// How often the models folder is checked; nil turns watching off (tests scan by hand).
    public var pollInterval: Duration? = .seconds(1)
    /// How long a source must stay unchanged before it is converted.
    public var settleTime: TimeInterval = 1.5

    public init(modelsDirectory: String, webDirectory: String? = nil) {
        self.modelsDirectory = modelsDirectory
        self.webDirectory = webDirectory
    }
}

/// The build server: serves web/, kedge.wasm and model bundles, converts what is dropped into the models
/// folder, accepts uploads. See `makeApplication()` for the endpoints.
public final class KedgeServer: Sendable {
    public let options: ServerOptions
    let logger: Logger
    let catalog = ModelCatalog()
    let store: ModelStore
    let files = FileCache()
    let webRoot: String?

    public init(options: ServerOptions, converter: any ModelConverter, logger: Logger) throws {
        self.options = options
        self.logger = logger
        self.store = try ModelStore(
            modelsDirectory: options.modelsDirectory, converter: converter, catalog: catalog, logger: logger,
            settleTime: options.settleTime)
        self.webRoot = options.webDirectory.flatMap(PathSafety.realPath)
        if let web = options.webDirectory, webRoot == nil {
            logger.warning("web folder not found; serving no pages", metadata: ["web": "\(web)"])
        }
    }

    /// Sets the modules served at /wasm/HASH/FILE and /FILE (from `WasmBuilder.ensure`).
    public func setWasm(_ state: WasmState) {
        catalog.update(wasm: state)
        // Compress them now rather than on the first page load.
        let paths = WasmVariant.allCases.compactMap { state[$0]?.path }
        guard !paths.isEmpty else { return }
        Task { [files] in
            for path in paths {
                if let c = try? await files.content(ofFile: path, contentType: "application/wasm") {
                    _ = try? await files.gzipped(c)
                }
            }
        }
    }

    /// One pass over the models folder (the watcher does this every `pollInterval`).
    public func scanModels() async {
        await store.scan()
    }

    /// Binds, serves until SIGINT/SIGTERM, then drains in-flight requests and stops the watcher.
    public func run() async throws {
        let app = makeApplication()
        try await app.runService()
    }

    public func makeApplication() -> some ApplicationProtocol {
        let router = Router(options: [.autoGenerateHeadEndpoints])
        router.add(middleware: EnvelopeMiddleware(corsOrigins: options.corsOrigins, logger: logger))
        addRoutes(to: router)
        var services: [any Service] = []
        if let interval = options.pollInterval {
            services.append(ModelWatcher(server: self, interval: interval))
        }
        var app = Application(
            router: router,
            // Idle connections are closed and header sizes bounded: slow or bloated clients cannot pile up.
            server: .http1(
                configuration: .init(
                    idleTimeout: .seconds(60),
                    httpDecoderConfiguration: .init(
                        maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 100))),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
            services: services,
            logger: logger)
        // Before the socket opens: list what is on disk (bundles, cached conversions); with a watcher the
        // conversions wait for its first pass, so a folder of large models does not delay listening.
        let convertNow = options.pollInterval == nil
        app.beforeServerStarts { [store] in await store.scan(convert: convertNow) }
        return app
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        router.get("/api/models") { [self] request, context in
            try await ContentResponder.respond(
                to: request, context: context, content: catalog.apiContent, cache: files, policy: .revalidate)
        }
        router.post("/api/models") { [self] request, context in
            try await handleUpload(request, context: context)
        }
        router.get("/bundles/:name/:hash/:file") { [self] request, context in
            try await serveBundleFile(request, context: context)
        }
        // The four module names and nothing else: the name picks a catalog entry, never a path.
        router.get("/wasm/:hash/:file") { [self] request, context in
            guard let file = context.parameters.get("file"), let variant = WasmVariant(rawValue: file) else {
                throw HTTPError(
                    .notFound,
                    message: "no such module; there are " + WasmVariant.allCases.map(\.fileName).joined(separator: ", "))
            }
            let wasm = catalog.wasm
            guard let hash = context.parameters.get("hash"), hash == wasm.urlHash else {
                throw HTTPError(.notFound, message: "no such \(file) version; see /api/models")
            }
            return try await serveWasm(request, context: context, wasm: wasm, variant: variant, policy: .immutable)
        }
        // Stable URLs, revalidated: /kedge.wasm, and the others where the client looks for them beside it.
        for variant in WasmVariant.allCases {
            router.get(RouterPath("/" + variant.fileName)) { [self] request, context in
                try await serveWasm(request, context: context, wasm: catalog.wasm, variant: variant, policy: .revalidate)
            }
        }
        router.get("/cascades/:file") { [self] request, context in
            // The name picks a catalog entry (a cascade.json or its sample volume); nothing else is reachable.
            guard let file = context.parameters.get("file"), let c = catalog.cascadeFile(named: file),
                let content = try await files.content(ofFile: c.path, contentType: c.contentType)
            else { throw HTTPError(.notFound, message: "no such cascade file") }
            return try await ContentResponder.respond(
                to: request, context: context, content: content, cache: files, policy: .revalidate)
        }
        router.get("/") { [self] request, context in try await serveWeb(request, context: context) }
        router.get("**") { [self] request, context in try await serveWeb(request, context: context) }
    }

    // MARK: handlers

    func serveBundleFile(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let name = context.parameters.get("name"), let hash = context.parameters.get("hash"),
            let file = context.parameters.get("file")
        else { throw HTTPError(.notFound) }
        // Nothing from the URL reaches the file system: the name picks a catalog entry, the file one of three.
        guard let entry = catalog.model(named: name), let bundle = entry.bundle, let info = bundle.file(named: file)
        else { throw HTTPError(.notFound, message: "no such model file") }
        guard bundle.hash == hash else {
            throw HTTPError(.notFound, message: "\(name) has a newer version; see /api/models")
        }
        let path = bundle.directory + "/" + info.name
        guard
            let content = try await files.content(
                ofFile: path, contentType: MediaTypes.contentType(forPath: path),
                knownSHA256: entry.kind == .converted ? info.sha256 : nil)
        else { throw HTTPError(.notFound, message: "bundle file vanished; see /api/models") }
        // A bundle folder edited in place: until the next scan gives it a new hash, its old URL must not
        // serve (and let browsers cache forever) the new bytes.
        guard content.sha256 == info.sha256 else {
            throw HTTPError(.notFound, message: "\(name) is changing; see /api/models")
        }
        return try await ContentResponder.respond(
            to: request, context: context, content: content, cache: files, policy: .immutable)
    }

    func serveWasm(
        _ request: Request, context: BasicRequestContext, wasm: WasmState, variant: WasmVariant, policy: CachePolicy
    ) async throws -> Response {
        guard let module = wasm[variant] else { throw HTTPError(.notFound, message: wasm.whyMissing(variant)) }
        guard let content = try await files.content(ofFile: module.path, contentType: "application/wasm") else {
            throw HTTPError(.notFound, message: "\(variant.fileName) vanished from disk; restart kedge serve")
        }
        // Replaced on disk since it was described (wasm/build.sh run by hand): its hashed URL must not serve
        // (and let browsers cache forever) other bytes; the stable URLs revalidate, so they serve what is there.
        guard policy != .immutable || content.sha256 == module.sha256 else {
            throw HTTPError(.notFound, message: "\(variant.fileName) changed on disk; restart kedge serve")
        }
        return try await ContentResponder.respond(
            to: request, context: context, content: content, cache: files, policy: policy)
    }

    func serveWeb(_ request: Request, context: BasicRequestContext) async throws -> Response {
        guard let webRoot else { throw HTTPError(.notFound) }
        switch PathSafety.resolve(rawPath: request.uri.path, realRoot: webRoot) {
        case .badRequest(let why):
            throw HTTPError(.badRequest, message: why)
        case .notFound:
            throw HTTPError(.notFound)
        case .file(let path):
            guard let content = try await files.content(ofFile: path, contentType: MediaTypes.contentType(forPath: path))
            else { throw HTTPError(.notFound) }
            return try await ContentResponder.respond(
                to: request, context: context, content: content, cache: files, policy: .revalidate)
        }
    }
}

/// Polls the models folder until graceful shutdown.
struct ModelWatcher: Service {
    let server: KedgeServer
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await server.scanModels()
                try? await Task.sleep(for: interval)
            }
        }
    }
}
