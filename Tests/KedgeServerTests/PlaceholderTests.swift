import XCTest

@testable import KedgeServer

final class PlaceholderTests: XCTestCase {
    func testVersion() { XCTAssertFalse(KedgeServerVersion.string.isEmpty) }
}
