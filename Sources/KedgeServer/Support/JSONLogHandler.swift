import Foundation
import Logging

/// One JSON object per line on stderr (`--log-format json`): time, level, label, message and every metadata
/// key as a field, for log shippers and `jq`.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata { fields[k] = "\(v)" }
        if let extra = event.metadata { for (k, v) in extra { fields[k] = "\(v)" } }
        fields["time"] = Date().formatted(.iso8601)
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = "\(event.message)"
        guard var line = try? JSONOutput.encode(fields) else { return }
        line.append(0x0a)
        FileHandle.standardError.write(line)
    }
}

/// Where the project's folders are: the first folder, from the working directory upwards and then from the
/// executable upwards, that holds `web/` and `wasm/build.sh` (a checkout); else the working directory.
public enum ProjectRoot {
    public static func locate() -> String {
        let fm = FileManager.default
        var starts = [fm.currentDirectoryPath]
        if let exe = Bundle.main.executablePath { starts.append((exe as NSString).deletingLastPathComponent) }
        for start in starts {
            var dir = PathSafety.realPath(start) ?? start
            while true {
                if fm.fileExists(atPath: dir + "/wasm/build.sh") && fm.fileExists(atPath: dir + "/web") { return dir }
                let parent = (dir as NSString).deletingLastPathComponent
                if parent == dir || parent.isEmpty { break }
                dir = parent
            }
        }
        return fm.currentDirectoryPath
    }
}

extension SubprocessConverter {
    /// A converter that runs this very executable's `convert` subcommand.
    public static func currentExecutable(timeout: Duration = .seconds(600)) -> SubprocessConverter {
        let exe = Bundle.main.executablePath ?? CommandLine.arguments[0]
        return SubprocessConverter(executable: exe, arguments: ["convert"], timeout: timeout)
    }
}
