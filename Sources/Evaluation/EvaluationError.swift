/// Everything that makes an evaluation fail, each with what a user needs to fix it.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    /// A benchmark or responses file is malformed: the file, the line (1-based, 0 = whole file) and what was expected.
    case badInput(file: String, line: Int, message: String)
    /// The server does not know the requested model.
    case modelNotFound(model: String, detail: String)
    /// The server answered something that is not an OpenAI chat completion.
    case badResponse(detail: String)
    /// The server answered an HTTP error that retrying does not fix (or retries ran out).
    case httpError(status: Int, body: String)
    /// The server could not be reached (after retries).
    case unreachable(endpoint: String, detail: String)
    /// The inference server could not start: port taken, bad command, never healthy…; with its last log lines.
    case serverFailedToStart(reason: String, logTail: [String])
    /// The inference server exited while an evaluation was using it; with its last log lines.
    case serverDied(status: String, logTail: [String])
    /// Loading new weights into a running server failed, and so did the fallback restart.
    case weightSwapFailed(detail: String)
    /// An option has a value the evaluation cannot use.
    case invalidOption(String)

    public var description: String {
        switch self {
        case .badInput(let file, let line, let message):
            return line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)"
        case .modelNotFound(let model, let detail):
            return "the server does not serve model '\(model)': \(detail)"
        case .badResponse(let detail):
            return "the server's reply is not an OpenAI chat completion: \(detail)"
        case .httpError(let status, let body):
            return "the server answered HTTP \(status): \(body)"
        case .unreachable(let endpoint, let detail):
            return "cannot reach \(endpoint): \(detail)"
        case .serverFailedToStart(let reason, let logTail):
            return "the inference server did not start: \(reason)" + Self.formatLog(logTail)
        case .serverDied(let status, let logTail):
            return "the inference server died during the evaluation (\(status))" + Self.formatLog(logTail)
        case .weightSwapFailed(let detail):
            return "could not load the new weights into the server: \(detail)"
        case .invalidOption(let message):
            return message
        }
    }

    private static func formatLog(_ lines: [String]) -> String {
        lines.isEmpty ? "\n(the server wrote no output)" : "\nlast lines of its log:\n" + lines.map { "  | " + $0 }.joined(separator: "\n")
    }
}
