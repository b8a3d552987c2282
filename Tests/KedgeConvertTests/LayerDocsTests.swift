import Foundation
import KedgeConvert
import KedgeCore
import Testing

/// docs/LAYERS.md is generated from the layer catalog joined with the option table (KedgeConvert's `LayerDocs`);
/// this keeps the committed file from drifting from either.
@Suite struct LayerDocsTests {
    @Test func layersMarkdownMatchesTheCatalog() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/LAYERS.md")
        let committed = try String(contentsOf: url, encoding: .utf8)
        #expect(
            committed == (try LayerDocs.markdown()),
            "docs/LAYERS.md is out of date: run `swift run kedge layers --markdown > docs/LAYERS.md`")
    }

    @Test func everyClassNameIsRegisteredOnce() {
        var seen: [String: Int] = [:]
        for n in LayerCatalog.supportedClassNames { seen[n, default: 0] += 1 }
        let dup = seen.filter { $0.value > 1 }.map(\.key).sorted()
        #expect(dup.isEmpty, "registered twice: \(dup)")
    }
}
