import Foundation
import Testing

@testable import KedgeCore

/// docs/LAYERS.md is generated from the layer catalog; this keeps the two from drifting apart.
@Suite struct LayerDocsTests {
    @Test func layersMarkdownMatchesTheCatalog() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/LAYERS.md")
        let committed = try String(contentsOf: url, encoding: .utf8)
        #expect(
            committed == LayerCatalog.markdownTable(),
            "docs/LAYERS.md is out of date: run `swift run kedge layers --markdown > docs/LAYERS.md`")
    }

    @Test func everyClassNameIsRegisteredOnce() {
        var seen: [String: Int] = [:]
        for n in LayerCatalog.supportedClassNames { seen[n, default: 0] += 1 }
        let dup = seen.filter { $0.value > 1 }.map(\.key).sorted()
        #expect(dup.isEmpty, "registered twice: \(dup)")
    }
}
