/// Why a Pareto, hypervolume, box-decomposition or selection routine rejected its input.
public enum ParetoError: Error, Equatable, CustomStringConvertible {
    /// A point set that must not be empty was empty (`what` names it).
    case empty(what: String)
    /// Point `index` of `what` has `found` objectives; `expected` were expected.
    case objectiveCountMismatch(what: String, index: Int, expected: Int, found: Int)
    /// Point `index` of `what` has a NaN or infinite value in objective `objective`.
    case nonFiniteValue(what: String, index: Int, objective: Int)
    /// A scalar argument is outside its allowed range; `expected` says what was allowed.
    case invalidArgument(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case let .empty(what):
            return "\(what) is empty: expected at least one point"
        case let .objectiveCountMismatch(what, index, expected, found):
            return "\(what)[\(index)] has \(found) objectives: expected \(expected)"
        case let .nonFiniteValue(what, index, objective):
            return "\(what)[\(index)][\(objective)] is not finite: expected a finite number"
        case let .invalidArgument(name, value, expected):
            return "\(name) = \(value) is invalid: expected \(expected)"
        }
    }
}

/// Shared input checks for the multi-objective routines.
enum ParetoValidation {
    /// Checks that every point has `objectiveCount` finite values.
    static func checkPoints(_ points: [[Double]], objectiveCount: Int, what: String) throws {
        for (index, point) in points.enumerated() {
            guard point.count == objectiveCount else {
                throw ParetoError.objectiveCountMismatch(
                    what: what, index: index, expected: objectiveCount, found: point.count)
            }
            if let objective = point.firstIndex(where: { !$0.isFinite }) {
                throw ParetoError.nonFiniteValue(what: what, index: index, objective: objective)
            }
        }
    }

    /// Checks the reference point (at least one finite objective) and that `points` match it.
    static func checkPoints(_ points: [[Double]], referencePoint: [Double], what: String) throws {
        guard !referencePoint.isEmpty else { throw ParetoError.empty(what: "referencePoint") }
        if let objective = referencePoint.firstIndex(where: { !$0.isFinite }) {
            throw ParetoError.nonFiniteValue(what: "referencePoint", index: 0, objective: objective)
        }
        try checkPoints(points, objectiveCount: referencePoint.count, what: what)
    }
}
