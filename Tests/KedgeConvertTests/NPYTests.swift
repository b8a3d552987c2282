import Foundation
import KedgeCore
import Testing

/// The core's .npy reader against files NumPy wrote (Tests/Fixtures/converter/npy).
@Suite struct NPYTests {
    static let values: [String: (shape: [Int], values: [Float])] = {
        let data = try! Fixtures.bytes("npy/values.json")
        let obj = try! JSONSerialization.jsonObject(with: Data(data)) as! [String: [String: Any]]
        return obj.mapValues { ($0["shape"] as! [Int], ($0["values"] as! [Double]).map(Float.init)) }
    }()

    @Test(arguments: ["f4", "f8", "f2", "i4", "i8", "u1", "v2", "v3", "scalar", "empty"])
    func readsWhatNumPyWrites(_ name: String) throws {
        let t = try NPY.parse(Fixtures.bytes("npy/\(name).npy"))
        let want = NPYTests.values[name]!
        #expect(t.shape == want.shape)
        #expect(t.data == want.values)
    }

    @Test(arguments: [
        ("fortran", "Fortran"), ("big_endian", ">f4"), ("complex", "<c8"), ("truncated", "truncated"),
    ])
    func refusesWithAReason(_ name: String, _ reason: String) throws {
        let e = #expect(throws: KedgeError.self) { try NPY.parse(Fixtures.bytes("npy/\(name).npy")) }
        #expect(e?.message.contains(reason) == true, "\(e?.message ?? "")")
    }

    @Test func refusesNonNPYBytes() {
        #expect(throws: KedgeError.self) { try NPY.parse(Array("not numpy at all".utf8)) }
        #expect(throws: KedgeError.self) { try NPY.parse([]) }
        #expect(throws: KedgeError.self) { try NPY.parse([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0xFF, 0xFF]) }
    }

    @Test(arguments: [[2, 3], [7], [], [1, 0, 4]])
    func roundTrips(_ shape: [Int]) throws {
        let n = shape.reduce(1, *)
        let t = Tensor(shape: shape, data: (0..<n).map { Float($0) * 0.37 - 1 })
        let bytes = NPY.serialize(t)
        #expect((bytes.count - 4 * n) % 64 == 0)
        let back = try NPY.parse(bytes)
        #expect(back.shape == shape && back.data == t.data)
    }

    @Test func serializesAsNumPyDoes() throws {
        // np.save of a (2, 3) float32 array: same header text and bytes.
        let f4 = try Fixtures.bytes("npy/v2.npy")  // v2 header; compare payloads only
        let t = try NPY.parse(Fixtures.bytes("npy/f4.npy"))
        let mine = NPY.serialize(t)
        #expect(mine == (try Fixtures.bytes("npy/f4.npy")))
        #expect(Array(mine.suffix(24)) == Array(f4.suffix(24)))
    }
}
