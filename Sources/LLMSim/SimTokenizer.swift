/// A deterministic stand-in for a provider's tokenizer: a token is a word of up to
/// five letters or digits, or a four-character piece of a longer word, or one
/// punctuation mark, each carrying the whitespace before it (as GPT tokens do:
/// `"Olá"`, `"!"`, `" Vamos"`, `" come"`, `"çar"`). Joining the tokens gives back
/// the text exactly.
enum SimTokenizer {
    static func tokens(of text: String) -> [String] {
        var tokens: [String] = []
        var pending = ""  // whitespace waiting for the next token
        var word = ""
        func flushWord() {
            guard !word.isEmpty else { return }
            let letters = Array(word)
            if letters.count <= 5 {
                tokens.append(pending + word)
            } else {
                for start in stride(from: 0, to: letters.count, by: 4) {
                    let piece = String(letters[start..<min(start + 4, letters.count)])
                    tokens.append((start == 0 ? pending : "") + piece)
                }
            }
            pending = ""
            word = ""
        }
        for character in text {
            switch Kind(character) {
            case .wordCharacter:
                word.append(character)
            case .whitespace:
                flushWord()
                pending.append(character)
            case .mark:
                flushWord()
                tokens.append(pending + String(character))
                pending = ""
            }
        }
        flushWord()
        if !pending.isEmpty { tokens.append(pending) }
        return tokens
    }

    /// How many tokens `text` counts as (what `usage` reports): `tokens(of:).count`,
    /// without making the tokens (every request counts its whole prompt).
    static func count(_ text: String) -> Int {
        var count = 0
        var wordLength = 0
        var pending = false
        func flushWord() {
            guard wordLength > 0 else { return }
            count += wordLength <= 5 ? 1 : (wordLength + 3) / 4
            wordLength = 0
            pending = false
        }
        for character in text {
            switch Kind(character) {
            case .wordCharacter:
                wordLength += 1
            case .whitespace:
                flushWord()
                pending = true
            case .mark:
                flushWord()
                count += 1
                pending = false
            }
        }
        flushWord()
        return pending ? count + 1 : count
    }

    /// What a character is to the tokenizer; ASCII without Unicode's property tables.
    private enum Kind {
        case wordCharacter, whitespace, mark

        init(_ character: Character) {
            if let ascii = character.asciiValue {
                switch ascii {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    self = .wordCharacter
                case 0x09...0x0D, 0x20:
                    self = .whitespace
                default:
                    self = .mark
                }
            } else if character.isLetter || character.isNumber {
                self = .wordCharacter
            } else {
                self = character.isWhitespace ? .whitespace : .mark
            }
        }
    }

    /// Exactly `count` tokens: the first `count` of `tokens`, or all of them followed by filler words.
    static func exactly(_ count: Int, from tokens: [String]) -> [String] {
        if tokens.count >= count { return Array(tokens.prefix(count)) }
        let missing = count - tokens.count
        return tokens + (0..<missing).map { " " + filler[$0 % filler.count] }
    }

    /// Words of one token each, to lengthen a reply deterministically.
    static let filler = ["e", "mais", "uma", "vez", "o", "tema", "é", "bom", "para", "nós"]
}
