import Foundation

/// A configuration value that is missing or malformed, named by its variable.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public var variable: String
    public var problem: String

    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "configuration error: \(variable) \(problem)" }
}

/// Typed reads of environment variables, each failing with an error that names the
/// variable. Read once at start-up into a settings struct; nothing reads the
/// environment later.
public struct EnvironmentReader: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) {
        self.values = values
    }

    /// A set, non-blank value, or nil.
    public func string(_ name: String) -> String? {
        guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    public func string(_ name: String, default fallback: String) -> String {
        string(name) ?? fallback
    }

    public func requiredString(_ name: String, why: String) throws(ConfigurationError) -> String {
        guard let value = string(name) else { throw ConfigurationError(variable: name, problem: "is not set: \(why)") }
        return value
    }

    public func int(_ name: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let text = string(name) else { return fallback }
        guard let value = Int(text) else {
            throw ConfigurationError(variable: name, problem: "must be a whole number, got \"\(text)\"")
        }
        guard range.contains(value) else {
            throw ConfigurationError(variable: name, problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    public func bool(_ name: String, default fallback: Bool) throws(ConfigurationError) -> Bool {
        guard let text = string(name)?.lowercased() else { return fallback }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(variable: name, problem: "must be on/off (or true/false), got \"\(text)\"")
        }
    }

    public func seconds(_ name: String, default fallback: Duration, range: ClosedRange<Int>) throws(ConfigurationError) -> Duration {
        guard string(name) != nil else { return fallback }
        return .seconds(try int(name, default: 0, range: range))
    }
}

/// Reads a process's settings from its environment, or prints the configuration
/// error (which names the variable) and exits with status 2.
public func settingsOrExit<Settings>(
    of process: String,
    _ read: (EnvironmentReader) throws(ConfigurationError) -> Settings
) -> Settings {
    do {
        return try read(EnvironmentReader(ProcessInfo.processInfo.environment))
    } catch {
        FileHandle.standardError.write(Data("\(process): \(error)\n".utf8))
        exit(2)
    }
}
