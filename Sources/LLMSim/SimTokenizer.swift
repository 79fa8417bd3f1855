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
            if character.isLetter || character.isNumber {
                word.append(character)
            } else if character.isWhitespace {
                flushWord()
                pending.append(character)
            } else {
                flushWord()
                tokens.append(pending + String(character))
                pending = ""
            }
        }
        flushWord()
        if !pending.isEmpty { tokens.append(pending) }
        return tokens
    }

    /// How many tokens `text` counts as (what `usage` reports).
    static func count(_ text: String) -> Int { tokens(of: text).count }

    /// Exactly `count` tokens: the first `count` of `tokens`, or all of them followed by filler words.
    static func exactly(_ count: Int, from tokens: [String]) -> [String] {
        if tokens.count >= count { return Array(tokens.prefix(count)) }
        let missing = count - tokens.count
        return tokens + (0..<missing).map { " " + filler[$0 % filler.count] }
    }

    /// Words of one token each, to lengthen a reply deterministically.
    static let filler = ["e", "mais", "uma", "vez", "o", "tema", "é", "bom", "para", "nós"]
}
