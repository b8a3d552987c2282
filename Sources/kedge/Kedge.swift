import ArgumentParser

@main
struct Kedge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kedge",
        abstract: "Run Keras models on the client: convert them to Kedge bundles, run and inspect them natively.",
        version: "0.1.0",
        subcommands: [
            Convert.self, Predict.self, Inspect.self, Bench.self, Layers.self, CascadeRun.self, Serve.self,
            HDF5Reader.self,
        ]
    )
}
