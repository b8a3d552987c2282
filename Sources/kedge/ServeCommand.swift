import ArgumentParser
import Foundation
import KedgeServer
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the web pages, the wasm modules and every model in a folder, converting what is dropped in.",
        discussion: """
            Builds the wasm modules first when their sources changed (wasm/build.sh: kedge.wasm, kedge-full.wasm \
            and their -relaxed flavours). Model files (.h5, .keras, .json, .ubj, \
            .bin) and TF.js / Keras.js folders in --models are converted into <models>/.kedge-bundles, also while \
            the server runs; folders that already are bundles are served as they are. Endpoints: GET /api/models, \
            POST /api/models?name=NAME (upload), GET /bundles/NAME/HASH/FILE, GET /wasm/HASH/MODULE and /MODULE (MODULE: one of the four .wasm files), \
            GET /healthz, \
            and the pages of --web at /.
            """)

    @Option(help: "The models folder (default: models/cascade in the project, the bundled demo cascade).")
    var models: String?

    @Option(help: "The folder of pages served at / (default: web/ in the project).")
    var web: String?

    @Option(help: "The project checkout (default: found from the working directory or the executable).")
    var root: String?

    @Option(help: "Address to bind; anything but loopback exposes the server to the network.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind (0 picks a free one).")
    var port = 8080

    @Option(name: .customLong("cors-origin"), help: "An origin allowed to fetch cross-origin (repeatable; * for any).")
    var corsOrigins: [String] = []

    @Option(name: .customLong("max-upload-mb"), help: "Largest accepted upload, in MiB.")
    var maxUploadMB = 256

    @Flag(inversion: .prefixedNo, help: "Accept uploads on POST /api/models (default: on for loopback, off otherwise).")
    var upload: Bool?

    @Flag(name: .customLong("skip-wasm-build"), help: "Serve whatever wasm modules exist without checking their sources.")
    var skipWasmBuild = false

    @Option(name: .customLong("poll-interval"), help: "Seconds between checks of the models folder (0: no watching).")
    var pollInterval = 1.0

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("log-format"), help: "text or json (one object per line).")
    var logFormat = "text"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard maxUploadMB > 0 else { throw ValidationError("--max-upload-mb must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format is text or json") }
        guard pollInterval >= 0 else { throw ValidationError("--poll-interval cannot be negative") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var h: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "kedge.serve")
        let root = root ?? ProjectRoot.locate()
        var options = ServerOptions(modelsDirectory: models ?? root + "/models/cascade", webDirectory: web ?? root + "/web")
        options.host = host
        options.port = port
        options.corsOrigins = corsOrigins
        options.maxUploadBytes = maxUploadMB << 20
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(host)
        options.uploadsEnabled = upload ?? loopback
        options.pollInterval = pollInterval > 0 ? .milliseconds(Int(pollInterval * 1000)) : nil
        let skip = skipWasmBuild
        let server = try KedgeServer(options: options, converter: SubprocessConverter.currentExecutable(), logger: logger)
        if !loopback {
            logger.warning(
                "binding a non-loopback address: anyone who can reach it can fetch the models",
                metadata: ["host": "\(host)", "uploads": "\(options.uploadsEnabled ? "on" : "off")"])
        }
        let modelsDirectory = options.modelsDirectory
        try runBlocking {
            let builder = WasmBuilder(repositoryRoot: root)
            server.setWasm(skip ? builder.unchecked() : await builder.ensure(logger: logger))
            logger.info("serving", metadata: ["models": "\(modelsDirectory)", "root": "\(root)"])
            try await server.run()
            logger.info("stopped")
        }
    }
}

/// The CLI's root command is synchronous; the server is async. Run it on the concurrency pool and wait.
private func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable { var error: (any Error)? }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let e = outcome.error { throw e }
}
