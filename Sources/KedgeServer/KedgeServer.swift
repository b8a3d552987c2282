// The build server behind `kedge serve`: builds kedge.wasm, converts dropped models, serves web/, wasm and bundles.
public enum KedgeServerVersion {
    public static let string = "0.1.0"
}
