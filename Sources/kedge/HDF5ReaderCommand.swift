import ArgumentParser
import Foundation
import KedgeConvert

/// `kedge hdf5-reader FILE OUT NAME`: the child process that reads an HDF5 file for `kedge convert`
/// (KedgeConvert's `HDF5Isolation`), so that a crash of libhdf5 on a hostile file ends this process, not the
/// converter. Hidden: not meant to be run by hand.
struct HDF5Reader: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hdf5-reader", abstract: "Internal: read an HDF5 file for kedge convert.", shouldDisplay: false)

    @Argument var input: String
    @Argument var output: String
    @Argument var name: String

    func run() throws {
        let status = HDF5Isolation.runReader(input: input, output: output, name: name)
        if status != 0 { throw ExitCode(status) }
    }
}

/// A failure at run time (a missing or corrupt file, a bad model): ArgumentParser prints `Error: ` and the message
/// and exits 1, without the usage text it adds to a `ValidationError` (exit 64, kept for real usage errors).
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Every command that reads model files reads HDF5 in a child `kedge hdf5-reader` (HDF5Isolation).
func isolateHDF5Reading() {
    HDF5Isolation.readerExecutable = "/proc/self/exe"
}
