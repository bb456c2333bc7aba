import CZeroMQ

/// Facts about the libzmq this program runs with.
public enum LibZMQ {
    /// `zmq_version`, e.g. (4, 3, 4).
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// `zmq_has`: whether a capability ("curve", "ipc", "draft"…) was built in.
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }
}
