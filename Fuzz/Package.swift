// swift-tools-version:6.0
// Coverage-guided fuzzing (libFuzzer) of the parsers that read bytes from outside:
// the WebSocket frame decoder, the SSE parser, the JWT and JWKS readers, the
// retry-hint parsers and the WhatsApp webhook's reader. Each target compiles the project's own source file of its
// parser (the files in Sources/*/ are symbolic links into ../Sources), so the code
// fuzzed is the code shipped. Built and run by scripts/fuzz.sh; see docs/fuzzing.md.
import PackageDescription

let package = Package(
    name: "ParleyFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "4.0.0"..<"5.0.0")
    ],
    targets: [
        // The project's ErrorCode, which the frame decoder's and the token readers' errors carry.
        .target(name: "Shared"),
        .executableTarget(name: "FuzzFrames", dependencies: ["Shared"]),
        .executableTarget(name: "FuzzSSE"),
        .executableTarget(
            name: "FuzzJWT",
            dependencies: [
                "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(name: "FuzzRetryHints"),
        .executableTarget(name: "FuzzWebhook", dependencies: ["Shared", .product(name: "Crypto", package: "swift-crypto")]),
    ]
)
