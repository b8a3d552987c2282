import Foundation
import KedgeCore

/// Reads HDF5 files in a child process, so that libhdf5 never runs on untrusted bytes in the converter's own
/// process: a byte-mutated `.h5` can crash libhdf5 itself (SIGSEGV, ../shared/repro/hdf5-segv-mutated-rnn.h5),
/// before any of Kedge's checks. The child (`kedge hdf5-reader`) takes an `HDF5Snapshot` of the whole file and
/// writes it to a temporary file; the parent decodes that. One child per file, not per dataset.
///
/// The `kedge` CLI turns this on for itself (`readerExecutable`); a program embedding KedgeConvert sets it to a
/// `kedge` binary to get the same isolation. Left nil (the Swift tests, which read only the committed fixtures),
/// files are read in process.
public enum HDF5Isolation {
    /// The `kedge` executable to run as `kedge hdf5-reader FILE OUT NAME`; nil reads in process.
    nonisolated(unsafe) public static var readerExecutable: String? = nil
    /// A reader still running after this long is killed: a hostile file can make libhdf5 loop.
    nonisolated(unsafe) public static var timeoutSeconds: Double = 300

    /// The reader's progress lines on stderr: `reading OBJECT`, and `error KIND MESSAGE` for a clean failure.
    static let readingPrefix = "reading "
    static let errorPrefix = "error "

    static func open(path: String, name: String) throws -> HDF5File {
        guard let exe = readerExecutable else { return try HDF5File(path: path, name: name) }
        return try read(path, name: name, executable: exe)
    }

    /// The weights inside a `.keras` zip: written to a temporary file for the reader.
    static func open(image: [UInt8], name: String) throws -> HDF5File {
        guard let exe = readerExecutable else { return try HDF5File(image: image, name: name) }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.weights.h5")
        guard FileManager.default.createFile(atPath: file.path, contents: Data(image)) else {
            throw KedgeError(.internalError, "\(name): cannot write a temporary copy for the HDF5 reader")
        }
        return try read(file.path, name: name, executable: exe)
    }

    /// The child's side: snapshot `input` into `output`. Returns the exit status (0, or 3 after a clean error,
    /// which is the last stderr line). A crash inside libhdf5 ends the process by the signal instead.
    public static func runReader(input: String, output: String, name: String) -> Int32 {
        let progress = FileHandle.standardError
        do {
            let file = try HDF5File(path: input, name: name)
            let snap = try HDF5Snapshot.take(file) { object in
                progress.write(Data((readingPrefix + object + "\n").utf8))
            }
            guard FileManager.default.createFile(atPath: output, contents: Data(snap.encoded())) else {
                throw KedgeError(.internalError, "\(name): the HDF5 reader cannot write its snapshot")
            }
            return 0
        } catch {
            let e = error as? KedgeError ?? KedgeError(.invalidFile, "\(name): \(error)")
            let line = e.message.replacingOccurrences(of: "\n", with: " ")
            progress.write(Data((errorPrefix + String(e.kind.rawValue) + " " + line + "\n").utf8))
            return 3
        }
    }

    private static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kedge-hdf5-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false)
        return dir
    }

    private static func read(_ path: String, name: String, executable: String) throws -> HDF5File {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("snapshot")
        let log = dir.appendingPathComponent("progress")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        defer { try? logHandle.close() }

        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["hdf5-reader", path, out.path, name]
        var env = ProcessInfo.processInfo.environment
        // A crash must end the child at once: the Swift runtime's backtracer would spend seconds on it.
        env["SWIFT_BACKTRACE"] = "enable=no"
        child.environment = env
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = FileHandle.nullDevice
        child.standardError = logHandle
        do {
            try child.run()
        } catch {
            throw KedgeError(.internalError, "\(name): cannot start the HDF5 reader \(executable): \(error)")
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while child.isRunning && Date() < deadline { usleep(2_000) }
        if child.isRunning {
            child.terminate()
            child.waitUntilExit()
            throw KedgeError(
                .invalidFile, "\(name): corrupt HDF5 file (the HDF5 library did not finish within \(Int(timeoutSeconds)) s)")
        }
        let lines = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n") ?? []
        if child.terminationReason == .uncaughtSignal {
            let last = lines.last(where: { $0.hasPrefix(readingPrefix) }).map { String($0.dropFirst(readingPrefix.count)) }
            throw KedgeError(
                .invalidFile,
                "\(name): corrupt HDF5 file (the HDF5 library failed reading \(last.map { "object '\($0)'" } ?? "the file"))")
        }
        if child.terminationStatus == 3, let line = lines.last, line.hasPrefix(errorPrefix) {
            let rest = line.dropFirst(errorPrefix.count)
            let space = rest.firstIndex(of: " ") ?? rest.endIndex
            let kind = Int32(rest[..<space]).flatMap { KedgeError.Kind(rawValue: $0) } ?? .invalidFile
            throw KedgeError(kind, String(rest[space...].dropFirst()))
        }
        guard child.terminationStatus == 0, let bytes = FileManager.default.contents(atPath: out.path) else {
            throw KedgeError(
                .internalError, "\(name): the HDF5 reader failed (status \(child.terminationStatus)): \(lines.last ?? "")")
        }
        return HDF5File(snapshot: try HDF5Snapshot.decode([UInt8](bytes), name: name), name: name)
    }
}
