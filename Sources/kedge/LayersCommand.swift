import ArgumentParser
import KedgeConvert
import KedgeCore

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every supported Keras layer class (the source of docs/LAYERS.md).")

    @Flag(help: "Print docs/LAYERS.md: every layer with the config options it honours and the weights it reads.")
    var markdown = false

    func run() throws {
        if markdown {
            print(try LayerDocs.markdown(), terminator: "")
        } else {
            print(LayerCatalog.supportedClassNames.joined(separator: "\n"))
        }
    }
}
