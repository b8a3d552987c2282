import ArgumentParser
import KedgeCore

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every supported Keras layer class (the source of docs/LAYERS.md).")

    @Flag(help: "Print docs/LAYERS.md.") var markdown = false

    func run() throws {
        if markdown {
            print(LayerCatalog.markdownTable(), terminator: "")
        } else {
            print(LayerCatalog.supportedClassNames.joined(separator: "\n"))
        }
    }
}
