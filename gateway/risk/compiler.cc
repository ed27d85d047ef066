// The rule language compiler: text -> tokens -> (type-checked, deduplicated) CompiledRuleset. There
// is no separate AST: the recursive-descent parser emits postfix code for each condition as it
// goes, and every operand and predicate is interned by a canonical key so a repeated expression is
// computed once per decision (ruleset.h).
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "gateway/risk/ruleset.h"
#include "keys/digest.h"

namespace paygate::risk {

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kHardBlock:
      return "hard_block";
    case Action::kAllow:
      return "allow";
    case Action::kBlock:
      return "block";
    case Action::kReview:
      return "review";
    case Action::kScore:
      return "score";
  }
  return "?";
}

std::string_view AggregateFuncName(AggregateFunc func) {
  switch (func) {
    case AggregateFunc::kCount:
      return "count";
    case AggregateFunc::kSum:
      return "sum";
    case AggregateFunc::kCountDistinct:
      return "count_distinct";
    case AggregateFunc::kFirstSeen:
      return "first_seen";
    case AggregateFunc::kLastSeen:
      return "last_seen";
  }
  return "?";
}

int CompiledRuleset::RuleIndex(std::string_view id) const {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

int CompiledRuleset::AggregateIndex(std::string_view agg_name) const {
  for (std::size_t i = 0; i < aggregates.size(); ++i) {
    if (aggregates[i].name == agg_name) return static_cast<int>(i);
  }
  return -1;
}

std::string CompileError::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string CompileErrors::ToString() const {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.ToString();
  }
  return out;
}

namespace {

// Bounds that keep a ruleset's evaluation cost and a decision's size predictable.
constexpr std::size_t kMaxOperands = 4096;
constexpr std::size_t kMaxPredicates = 4096;
constexpr std::size_t kMaxRules = 1024;
constexpr std::size_t kMaxAggregates = 256;
constexpr int kMaxStack = 64;
constexpr std::int64_t kMaxWindowS = 400 * 86400;

enum class Tok {
  kEnd,
  kIdent,
  kInt,
  kDecimal,
  kDuration,
  kString,
  kListRef,
  kLParen,
  kRParen,
  kComma,
  kColon,
  kAssign,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kPlus,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;   // as written
  std::string str;         // string literal (unescaped) or list name
  std::int64_t value = 0;  // kInt; kDuration in seconds
  int line = 1;
  int column = 1;
};

struct Failure {};  // unwinds one statement after its error was recorded

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

const std::set<std::string_view>& StatementKeywords() {
  static const std::set<std::string_view> k{
      "ruleset", "thresholds", "time_budget_us", "on_timeout", "list", "aggregate", "rule"};
  return k;
}

class Compiler {
 public:
  Compiler(std::string_view source, std::string_view file) : source_(source), file_(file) {}

  Result<std::shared_ptr<const CompiledRuleset>, CompileErrors> Run() {
    Lex();
    if (!errors_.errors.empty()) return errors_;
    while (Peek().kind != Tok::kEnd) {
      try {
        Statement();
      } catch (const Failure&) {
        // Skip to the next statement keyword so later errors are reported too.
        do {
          ++pos_;
        } while (Peek().kind != Tok::kEnd &&
                 !(Peek().kind == Tok::kIdent && StatementKeywords().count(Peek().text) > 0));
      }
    }
    Finish();
    if (!errors_.errors.empty()) return errors_;
    return std::shared_ptr<const CompiledRuleset>(std::move(rs_));
  }

 private:
  // --- errors
  // ---------------------------------------------------------------------------------------------
  void ErrorAt(int line, int column, std::string message) {
    errors_.errors.push_back({std::string(file_), line, column, std::move(message)});
  }
  [[noreturn]] void Fail(const Token& at, std::string message) {
    ErrorAt(at.line, at.column, std::move(message));
    throw Failure{};
  }

  // --- lexer
  // ----------------------------------------------------------------------------------------------
  void Lex() {
    std::size_t i = 0;
    int line = 1;
    std::size_t line_start = 0;
    const auto n = source_.size();
    while (true) {
      while (i < n) {
        const char c = source_[i];
        if (c == '\n') {
          ++line;
          line_start = ++i;
        } else if (c == ' ' || c == '\t' || c == '\r') {
          ++i;
        } else if (c == '#') {
          while (i < n && source_[i] != '\n') ++i;
        } else {
          break;
        }
      }
      Token t;
      t.line = line;
      t.column = static_cast<int>(i - line_start) + 1;
      if (i >= n) {
        tokens_.push_back(t);
        return;
      }
      const std::size_t start = i;
      const char c = source_[i];
      // After the first character is consumed: is the next one `next`? (consumes it if so)
      auto two = [&](char next) {
        if (i < n && source_[i] == next) {
          ++i;
          return true;
        }
        return false;
      };
      if (IsIdentStart(c)) {
        while (i < n && IsIdentChar(source_[i])) ++i;
        t.kind = Tok::kIdent;
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 (c == '-' && i + 1 < n &&
                  std::isdigit(static_cast<unsigned char>(source_[i + 1])))) {
        ++i;
        while (i < n && std::isdigit(static_cast<unsigned char>(source_[i]))) ++i;
        bool decimal = false;
        if (i + 1 < n && source_[i] == '.' &&
            std::isdigit(static_cast<unsigned char>(source_[i + 1]))) {
          decimal = true;
          ++i;
          while (i < n && std::isdigit(static_cast<unsigned char>(source_[i]))) ++i;
        }
        const std::string_view digits = source_.substr(start, i - start);
        if (decimal) {
          t.kind = Tok::kDecimal;
        } else {
          const auto v = ParseMinorUnits(digits, 0);
          if (!v) {
            ErrorAt(t.line, t.column, "integer out of range: " + std::string(digits));
            t.value = 0;
          } else {
            t.value = *v;
          }
          t.kind = Tok::kInt;
          // A unit right after the digits makes a duration: 30d, 12h, 15m, 45s.
          if (i < n && std::strchr("smhd", source_[i]) != nullptr &&
              (i + 1 >= n || !IsIdentChar(source_[i + 1]))) {
            static constexpr std::pair<char, std::int64_t> kUnits[] = {
                {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
            for (const auto& [u, mult] : kUnits) {
              if (source_[i] == u) t.value *= mult;
            }
            ++i;
            t.kind = Tok::kDuration;
            if (t.value < 0) ErrorAt(t.line, t.column, "a duration cannot be negative");
          } else if (i < n && IsIdentStart(source_[i])) {
            while (i < n && IsIdentChar(source_[i])) ++i;
            ErrorAt(t.line, t.column,
                    "unknown unit in '" + std::string(source_.substr(start, i - start)) +
                        "' (durations use s, m, h or d, e.g. 30d)");
          }
        }
      } else if (c == '"') {
        ++i;
        bool closed = false;
        while (i < n && source_[i] != '\n') {
          if (source_[i] == '\\' && i + 1 < n &&
              (source_[i + 1] == '"' || source_[i + 1] == '\\')) {
            t.str += source_[i + 1];
            i += 2;
          } else if (source_[i] == '"') {
            closed = true;
            ++i;
            break;
          } else {
            t.str += source_[i++];
          }
        }
        if (!closed) ErrorAt(t.line, t.column, "unterminated string");
        t.kind = Tok::kString;
      } else if (c == '@') {
        ++i;
        while (i < n && IsIdentChar(source_[i])) ++i;
        t.str = std::string(source_.substr(start + 1, i - start - 1));
        if (t.str.empty()) ErrorAt(t.line, t.column, "expected a list name after '@'");
        t.kind = Tok::kListRef;
      } else {
        ++i;
        switch (c) {
          case '(':
            t.kind = Tok::kLParen;
            break;
          case ')':
            t.kind = Tok::kRParen;
            break;
          case ',':
            t.kind = Tok::kComma;
            break;
          case ':':
            t.kind = Tok::kColon;
            break;
          case '+':
            t.kind = Tok::kPlus;
            break;
          case '=':
            t.kind = two('=') ? Tok::kEq : Tok::kAssign;
            break;
          case '!':
            if (two('=')) {
              t.kind = Tok::kNe;
              break;
            }
            ErrorAt(t.line, t.column, "unexpected '!' (use 'not' or '!=')");
            continue;
          case '<':
            t.kind = two('=') ? Tok::kLe : Tok::kLt;
            break;
          case '>':
            t.kind = two('=') ? Tok::kGe : Tok::kGt;
            break;
          default:
            ErrorAt(t.line, t.column, std::string("unexpected character '") + c + "'");
            continue;
        }
      }
      t.text = source_.substr(start, i - start);
      tokens_.push_back(std::move(t));
    }
  }

  // --- token helpers
  // --------------------------------------------------------------------------------------
  const Token& Peek(std::size_t ahead = 0) const {
    const std::size_t i = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[i];
  }
  const Token& Next() {
    const Token& t = Peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  bool IsWord(const Token& t, std::string_view w) const {
    return t.kind == Tok::kIdent && t.text == w;
  }
  bool AcceptWord(std::string_view w) {
    if (!IsWord(Peek(), w)) return false;
    Next();
    return true;
  }
  bool Accept(Tok kind) {
    if (Peek().kind != kind) return false;
    Next();
    return true;
  }
  static std::string Describe(const Token& t) {
    if (t.kind == Tok::kEnd) return "end of file";
    return "'" + std::string(t.text) + "'";
  }
  const Token& Expect(Tok kind, std::string_view what) {
    if (Peek().kind != kind)
      Fail(Peek(), "expected " + std::string(what) + ", found " + Describe(Peek()));
    return Next();
  }
  void ExpectWord(std::string_view w) {
    if (!AcceptWord(w))
      Fail(Peek(), "expected '" + std::string(w) + "', found " + Describe(Peek()));
  }

  // --- statements
  // -----------------------------------------------------------------------------------------
  void Statement() {
    const Token& t = Peek();
    if (t.kind != Tok::kIdent || StatementKeywords().count(t.text) == 0) {
      Fail(t,
           "expected a statement (ruleset, thresholds, time_budget_us, on_timeout, list, "
           "aggregate, rule), found " +
               Describe(t));
    }
    const std::string_view kw = Next().text;
    if (kw == "ruleset") {
      if (seen_name_) Fail(t, "a second 'ruleset' statement");
      seen_name_ = true;
      rs_->name = std::string(Expect(Tok::kIdent, "the ruleset's name").text);
    } else if (kw == "thresholds") {
      if (rs_->has_thresholds) Fail(t, "a second 'thresholds' statement");
      ExpectWord("review");
      const Token& r = Expect(Tok::kInt, "the review threshold");
      ExpectWord("block");
      const Token& b = Expect(Tok::kInt, "the block threshold");
      if (r.value <= 0 || b.value <= 0 || r.value > b.value || b.value > 1'000'000) {
        Fail(r, "thresholds must satisfy 0 < review <= block <= 1000000");
      }
      rs_->review_threshold = static_cast<std::int32_t>(r.value);
      rs_->block_threshold = static_cast<std::int32_t>(b.value);
      rs_->has_thresholds = true;
    } else if (kw == "time_budget_us") {
      const Token& v = Expect(Tok::kInt, "the budget in microseconds");
      if (v.value < 1 || v.value > 1'000'000)
        Fail(v, "time_budget_us must be between 1 and 1000000");
      rs_->time_budget_ns = v.value * 1000;
    } else if (kw == "on_timeout") {
      const Token& a = Expect(Tok::kIdent, "allow, review or block");
      if (a.text == "allow") {
        rs_->on_timeout = Action::kAllow;
      } else if (a.text == "review") {
        rs_->on_timeout = Action::kReview;
      } else if (a.text == "block") {
        rs_->on_timeout = Action::kBlock;
      } else {
        Fail(a, "on_timeout takes allow, review or block");
      }
    } else if (kw == "list") {
      ListStatement();
    } else if (kw == "aggregate") {
      AggregateStatement();
    } else {
      RuleStatement(t);
    }
  }

  void ListStatement() {
    const Token& name = Expect(Tok::kListRef, "a list name such as @blocked_accounts");
    Expect(Tok::kColon, "':' and the list's item kind");
    const Token& kind_tok = Expect(Tok::kIdent, "the list's item kind");
    const auto kind = ListKindFromName(kind_tok.text);
    if (!kind) {
      Fail(kind_tok, "unknown list kind '" + std::string(kind_tok.text) +
                         "' (account_hash, device_id, id_number, name, ip, bin, country, string)");
    }
    for (const auto& l : rs_->lists) {
      if (l.name == name.str) Fail(name, "list @" + name.str + " is declared twice");
    }
    rs_->lists.push_back({name.str, *kind});
  }

  EventMask EventList() {
    EventMask mask = 0;
    do {
      const Token& e = Expect(Tok::kIdent, "an event name");
      const auto type = EventTypeFromName(e.text);
      if (!type) {
        Fail(e, "unknown event '" + std::string(e.text) +
                    "' (premium_payment, refund, claim_payout, payout_account_changed, "
                    "policy_cancelled)");
      }
      mask |= MaskOf(*type);
    } while (Accept(Tok::kComma));
    return mask;
  }

  std::string EventNames(EventMask mask) const {
    std::string s;
    for (int i = 0; i < kEventTypeCount; ++i) {
      if (mask & MaskOf(static_cast<EventType>(i))) {
        if (!s.empty()) s += ", ";
        s += EventTypeName(static_cast<EventType>(i));
      }
    }
    return s;
  }

  Attr ExpectAttr(EventMask events, std::string_view role) {
    const Token& t = Expect(Tok::kIdent, role);
    const auto attr = AttrFromName(t.text);
    if (!attr || *attr == Attr::kEventTime)
      Fail(t, "unknown attribute '" + std::string(t.text) + "'");
    const EventMask missing = events & ~Info(*attr).events;
    if (missing) {
      Fail(t,
           "attribute " + std::string(t.text) + " is not supplied on event " + EventNames(missing));
    }
    return *attr;
  }

  void AggregateStatement() {
    if (rs_->aggregates.size() >= kMaxAggregates) Fail(Peek(), "too many aggregates");
    const Token& name = Expect(Tok::kIdent, "the aggregate's name");
    if (AttrFromName(name.text) || StatementKeywords().count(name.text) ||
        rs_->AggregateIndex(name.text) >= 0 || name.text.find('.') != std::string_view::npos) {
      Fail(name,
           "'" + std::string(name.text) + "' cannot name an aggregate (taken, or contains '.')");
    }
    Expect(Tok::kAssign, "'='");
    const Token& func_tok =
        Expect(Tok::kIdent, "count, sum, count_distinct, first_seen or last_seen");
    AggregateDef def;
    def.name = std::string(name.text);
    if (func_tok.text == "count") {
      def.func = AggregateFunc::kCount;
    } else if (func_tok.text == "sum") {
      def.func = AggregateFunc::kSum;
    } else if (func_tok.text == "count_distinct") {
      def.func = AggregateFunc::kCountDistinct;
    } else if (func_tok.text == "first_seen") {
      def.func = AggregateFunc::kFirstSeen;
    } else if (func_tok.text == "last_seen") {
      def.func = AggregateFunc::kLastSeen;
    } else {
      Fail(func_tok, "unknown aggregate function '" + std::string(func_tok.text) +
                         "' (count, sum, count_distinct, first_seen, last_seen)");
    }
    Expect(Tok::kLParen, "'('");
    // The `of` attribute is checked against the `on` events once they are known.
    const Token* of_tok = nullptr;
    if (def.func == AggregateFunc::kSum || def.func == AggregateFunc::kCountDistinct) {
      of_tok = &Peek();
      def.of = ExpectAttr(0, "the attribute to aggregate");
      const Type of_type = Info(def.of).type;
      if (def.func == AggregateFunc::kSum) {
        if (of_type == Type::kMoney) {
          Expect(Tok::kComma, "',' and the currency to sum (sum(claim.amount, CNY))");
          const Token& cur = Expect(Tok::kIdent, "a currency code");
          const auto packed = PackCurrency(cur.text);
          if (!packed) Fail(cur, "expected a currency code such as CNY");
          def.currency = *packed;
          def.type = Type::kMoney;
        } else if (of_type == Type::kInt || of_type == Type::kDuration) {
          def.type = of_type;
        } else {
          Fail(*of_tok, "sum needs a money, int or duration attribute");
        }
      } else {
        if (of_type == Type::kBool)
          Fail(*of_tok, "count_distinct of a bool is at most 2; count it instead");
        def.type = Type::kInt;
      }
    } else {
      def.type = def.func == AggregateFunc::kCount ? Type::kInt : Type::kTime;
    }
    Expect(Tok::kRParen, "')'");
    ExpectWord("by");
    const Token& by_tok = Peek();
    def.by = ExpectAttr(0, "the attribute to key by");
    const Type by_type = Info(def.by).type;
    if (by_type == Type::kBool || by_type == Type::kMoney || by_type == Type::kTime ||
        by_type == Type::kDuration) {
      Fail(by_tok, "an aggregate is keyed by an id, hash, country, IP, BIN or int attribute");
    }
    const bool windowed = def.func == AggregateFunc::kCount || def.func == AggregateFunc::kSum ||
                          def.func == AggregateFunc::kCountDistinct;
    if (AcceptWord("over")) {
      const Token& w = Expect(Tok::kDuration, "a window such as 24h");
      if (!windowed) Fail(w, "first_seen and last_seen are all-time; they take no window");
      if (w.value < 300 || w.value > kMaxWindowS) Fail(w, "a window is between 5m and 400d");
      def.window_s = w.value;
      def.bucket_s = w.value <= 2 * 3600 ? 300 : w.value <= 8 * 86400 ? 3600 : 86400;
      if (def.window_s % def.bucket_s != 0) {
        Fail(w, "a window of this length must be a whole number of " +
                    FormatValue(Value::Of(Type::kDuration, def.bucket_s)) + " buckets");
      }
    } else if (windowed) {
      Fail(Peek(), "expected 'over' and a window such as 24h");
    }
    ExpectWord("on");
    def.on = EventList();
    for (const auto& [attr, tok] : {std::pair{def.by, &by_tok}, std::pair{def.of, of_tok}}) {
      if (tok == nullptr) continue;
      const EventMask missing = def.on & ~Info(attr).events;
      if (missing) {
        Fail(*tok, "attribute " + std::string(Info(attr).name) + " is not supplied on event " +
                       EventNames(missing));
      }
    }
    std::string filter_key;
    if (AcceptWord("where")) {
      def.filter_begin = static_cast<std::uint32_t>(rs_->code.size());
      Context ctx{def.on, false, nullptr};
      Or(ctx);
      def.filter_end = static_cast<std::uint32_t>(rs_->code.size());
      CheckStack(def.filter_begin, def.filter_end, name);
      for (std::uint32_t i = def.filter_begin; i < def.filter_end; ++i) {
        const auto& ins = rs_->code[i];
        filter_key +=
            std::to_string(static_cast<int>(ins.op)) + ":" +
            (ins.op == OpCode::kPredicate ? predicate_keys_[ins.arg] : std::to_string(ins.arg)) +
            ";";
      }
    }
    def.signature = std::string(AggregateFuncName(def.func)) + "|" +
                    (def.func == AggregateFunc::kSum || def.func == AggregateFunc::kCountDistinct
                         ? std::string(Info(def.of).name)
                         : std::string()) +
                    "|" + std::to_string(def.currency) + "|" + std::string(Info(def.by).name) +
                    "|" + std::to_string(def.window_s) + "|" + std::to_string(def.on) + "|" +
                    filter_key;
    rs_->aggregates.push_back(std::move(def));
  }

  void RuleStatement(const Token& rule_tok) {
    if (rs_->rules.size() >= kMaxRules) Fail(rule_tok, "too many rules");
    Rule rule;
    rule.line = rule_tok.line;
    const Token& id = Expect(Tok::kIdent, "the rule's id");
    if (rs_->RuleIndex(id.text) >= 0)
      Fail(id, "rule " + std::string(id.text) + " is declared twice");
    rule.id = std::string(id.text);
    ExpectWord("on");
    rule.events = EventList();
    const Token& action =
        Expect(Tok::kIdent, "an action (hard_block, allow, block, review, score +N)");
    if (action.text == "hard_block") {
      rule.action = Action::kHardBlock;
    } else if (action.text == "allow") {
      rule.action = Action::kAllow;
    } else if (action.text == "block") {
      rule.action = Action::kBlock;
    } else if (action.text == "review") {
      rule.action = Action::kReview;
    } else if (action.text == "score") {
      rule.action = Action::kScore;
      Accept(Tok::kPlus);
      const Token& n = Expect(Tok::kInt, "the score to add, e.g. +20");
      if (n.value < -1000 || n.value > 1000 || n.value == 0)
        Fail(n, "a score is between -1000 and 1000, not 0");
      rule.score = static_cast<std::int32_t>(n.value);
      score_rule_ = &action;
    } else {
      Fail(action, "unknown action '" + std::string(action.text) +
                       "' (hard_block, allow, block, review, score +N)");
    }
    const Token& reason = Expect(Tok::kString, "the rule's reason text in double quotes");
    rule.reason = reason.str;
    ExpectWord("when");
    rule.code_begin = static_cast<std::uint32_t>(rs_->code.size());
    Context ctx{rule.events, true, &rule.inputs};
    Or(ctx);
    rule.code_end = static_cast<std::uint32_t>(rs_->code.size());
    CheckStack(rule.code_begin, rule.code_end, id);
    // Placeholders must name one of the rule's inputs, so a reason never renders a stale name.
    for (std::size_t open = rule.reason.find('{'); open != std::string::npos;
         open = rule.reason.find('{', open + 1)) {
      const std::size_t close = rule.reason.find('}', open);
      if (close == std::string::npos) Fail(reason, "unclosed '{' in the reason");
      const std::string ref = rule.reason.substr(open + 1, close - open - 1);
      const auto recorded = rule.inputs.begin() + std::min(rule.inputs.size(), kMaxRecordedInputs);
      const bool known = std::any_of(rule.inputs.begin(), recorded, [&](std::uint16_t op) {
        return rs_->operands[op].text == ref;
      });
      if (!known) {
        Fail(reason, "the reason refers to {" + ref + "}, which is not among the first " +
                         std::to_string(kMaxRecordedInputs) + " values the condition reads");
      }
    }
    rs_->rules.push_back(std::move(rule));
  }

  void CheckStack(std::uint32_t begin, std::uint32_t end, const Token& at) {
    int depth = 0;
    int max = 0;
    for (std::uint32_t i = begin; i < end; ++i) {
      const auto& ins = rs_->code[i];
      if (ins.op == OpCode::kPredicate) {
        ++depth;
      } else if (ins.op == OpCode::kAnd || ins.op == OpCode::kOr) {
        depth -= ins.arg - 1;
      }
      max = std::max(max, depth);
    }
    if (max > kMaxStack) Fail(at, "condition nests too deeply");
    rs_->max_stack = std::max(rs_->max_stack, max);
  }

  // --- conditions
  // -----------------------------------------------------------------------------------------
  struct Context {
    EventMask events;
    bool aggregates_allowed;
    std::vector<std::uint16_t>* inputs;  // the rule's inputs; null in `where`
  };

  void Emit(OpCode op, std::size_t arg) {
    rs_->code.push_back({op, static_cast<std::uint16_t>(arg)});
  }

  void Or(const Context& ctx) {
    And(ctx);
    std::size_t n = 1;
    while (AcceptWord("or")) {
      And(ctx);
      ++n;
    }
    if (n > 1) Emit(OpCode::kOr, n);
  }

  void And(const Context& ctx) {
    Not(ctx);
    std::size_t n = 1;
    while (AcceptWord("and")) {
      Not(ctx);
      ++n;
    }
    if (n > 1) Emit(OpCode::kAnd, n);
  }

  void Not(const Context& ctx) {
    if (AcceptWord("not")) {
      Not(ctx);
      Emit(OpCode::kNot, 0);
      return;
    }
    Primary(ctx);
  }

  // A parsed operand; string literals stay unresolved until the other side of a comparison says
  // whether they are strings, IPs or BINs.
  struct Parsed {
    std::uint16_t id = 0;
    bool string_literal = false;
    std::string raw;
    const Token* token = nullptr;
  };

  void Primary(const Context& ctx) {
    const Token& start = Peek();
    if (Accept(Tok::kLParen)) {
      Or(ctx);
      Expect(Tok::kRParen, "')'");
      return;
    }
    if (IsWord(start, "is_missing") && Peek(1).kind == Tok::kLParen) {
      Next();
      Next();
      Parsed x = OperandExpr(ctx);
      if (x.string_literal) Fail(*x.token, "is_missing needs an attribute or aggregate");
      Expect(Tok::kRParen, "')'");
      Predicate p;
      p.kind = PredicateKind::kIsMissing;
      p.lhs = x.id;
      EmitPredicate(p, "missing:" + std::to_string(x.id));
      return;
    }
    if (IsWord(start, "is_multiple_of") && Peek(1).kind == Tok::kLParen) {
      Next();
      Next();
      Parsed x = OperandExpr(ctx);
      Expect(Tok::kComma, "',' and the divisor");
      Parsed d = OperandExpr(ctx);
      Expect(Tok::kRParen, "')'");
      const Operand& xo = rs_->operands[x.id];
      const Operand& dop = rs_->operands[d.id];
      if (x.string_literal || (xo.type != Type::kInt && xo.type != Type::kMoney)) {
        Fail(*x.token, "is_multiple_of needs an int or money operand");
      }
      if (d.string_literal || dop.kind != OperandKind::kLiteral || dop.type != xo.type ||
          dop.literal.a <= 0) {
        Fail(*d.token, "the divisor must be a positive literal of the same type (" +
                           std::string(TypeName(xo.type)) + ")");
      }
      if (xo.type == Type::kMoney && dop.literal.aux != 0 && xo.kind == OperandKind::kLiteral &&
          xo.literal.aux != dop.literal.aux) {
        Fail(*d.token, "the divisor's currency differs");
      }
      Predicate p;
      p.kind = PredicateKind::kMultipleOf;
      p.lhs = x.id;
      p.rhs = d.id;
      EmitPredicate(p, "mult:" + std::to_string(x.id) + ":" + std::to_string(d.id));
      return;
    }

    Parsed lhs = OperandExpr(ctx);
    const Token& op_tok = Peek();
    std::optional<CmpOp> op;
    switch (op_tok.kind) {
      case Tok::kEq:
        op = CmpOp::kEq;
        break;
      case Tok::kNe:
        op = CmpOp::kNe;
        break;
      case Tok::kLt:
        op = CmpOp::kLt;
        break;
      case Tok::kLe:
        op = CmpOp::kLe;
        break;
      case Tok::kGt:
        op = CmpOp::kGt;
        break;
      case Tok::kGe:
        op = CmpOp::kGe;
        break;
      default:
        break;
    }
    if (op) {
      Next();
      Parsed rhs = OperandExpr(ctx);
      Resolve(lhs, rhs);
      Resolve(rhs, lhs);
      const Operand& l = rs_->operands[lhs.id];
      const Operand& r = rs_->operands[rhs.id];
      if (l.type != r.type) {
        Fail(op_tok, "cannot compare " + std::string(TypeName(l.type)) + " (" + l.text + ") with " +
                         std::string(TypeName(r.type)) + " (" + r.text + ")");
      }
      const bool ordered = l.type == Type::kInt || l.type == Type::kMoney ||
                           l.type == Type::kDuration || l.type == Type::kTime ||
                           l.type == Type::kBin;
      if (!ordered && *op != CmpOp::kEq && *op != CmpOp::kNe) {
        Fail(op_tok, "'" + std::string(op_tok.text) + "' does not apply to " +
                         std::string(TypeName(l.type)) + " (only == and !=)");
      }
      if (l.type == Type::kMoney && l.kind == OperandKind::kLiteral &&
          r.kind == OperandKind::kLiteral && l.literal.aux != r.literal.aux) {
        Fail(op_tok, "the two amounts have different currencies");
      }
      Predicate p;
      p.kind = PredicateKind::kCompare;
      p.op = *op;
      p.lhs = lhs.id;
      p.rhs = rhs.id;
      EmitPredicate(p, "cmp:" + std::to_string(static_cast<int>(*op)) + ":" +
                           std::to_string(lhs.id) + ":" + std::to_string(rhs.id));
      return;
    }

    bool negate = false;
    if (IsWord(op_tok, "not") && IsWord(Peek(1), "in")) {
      Next();
      negate = true;
    }
    if (AcceptWord("in")) {
      if (lhs.string_literal) Fail(*lhs.token, "the left side of 'in' must be an attribute");
      // A copy: interning the literals below may reallocate the operand table.
      const Operand x = rs_->operands[lhs.id];
      if (Peek().kind == Tok::kListRef) {
        const Token& lt = Next();
        int list = -1;
        for (std::size_t i = 0; i < rs_->lists.size(); ++i) {
          if (rs_->lists[i].name == lt.str) list = static_cast<int>(i);
        }
        if (list < 0)
          Fail(lt, "list @" + lt.str + " is not declared (add: list @" + lt.str + " : KIND)");
        // Lists change independently of events; a filter that read them would make replays
        // disagree.
        if (!ctx.aggregates_allowed) Fail(lt, "a 'where' filter cannot use lists");
        const ListKind want = rs_->lists[list].kind;
        const ListKind have =
            x.kind == OperandKind::kAttr ? Info(x.attr).list_kind : ListKind::kNone;
        if (have != want) {
          Fail(lt, x.text +
                       (have == ListKind::kNone
                            ? " cannot be looked up in a list"
                            : " holds " + std::string(ListKindName(have)) + " values") +
                       "; @" + lt.str + " is a list of " + std::string(ListKindName(want)));
        }
        Predicate p;
        p.kind = PredicateKind::kInList;
        p.lhs = lhs.id;
        p.list = static_cast<std::uint16_t>(list);
        EmitPredicate(p, "list:" + std::to_string(lhs.id) + ":" + std::to_string(list));
      } else {
        Expect(Tok::kLParen, "'@list' or '(' and literals");
        if (x.type == Type::kIp || x.type == Type::kMoney) {
          Fail(op_tok,
               "'in (...)' needs a string, country, int, bool, BIN or duration operand; use a list "
               "for IPs");
        }
        std::vector<std::int64_t> values;
        do {
          Parsed item = OperandExpr(ctx);
          Parsed self = lhs;
          Resolve(item, self);
          const Operand& io = rs_->operands[item.id];
          if (io.kind != OperandKind::kLiteral || io.type != x.type) {
            Fail(*item.token, "expected a " + std::string(TypeName(x.type)) + " literal");
          }
          values.push_back(io.literal.a);
        } while (Accept(Tok::kComma));
        Expect(Tok::kRParen, "')'");
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        std::string key = "set:" + std::to_string(lhs.id);
        for (auto v : values) key += ":" + std::to_string(v);
        Predicate p;
        p.kind = PredicateKind::kInSet;
        p.lhs = lhs.id;
        if (predicate_ids_.count(key) == 0) {
          p.set_begin = static_cast<std::uint32_t>(rs_->set_values.size());
          rs_->set_values.insert(rs_->set_values.end(), values.begin(), values.end());
          p.set_end = static_cast<std::uint32_t>(rs_->set_values.size());
        }
        EmitPredicate(p, key);
      }
      if (negate) Emit(OpCode::kNot, 0);
      return;
    }
    if (negate) Fail(op_tok, "expected 'in' after 'not'");

    // A bool operand on its own.
    const Operand& x = rs_->operands[lhs.id];
    if (lhs.string_literal || x.type != Type::kBool) {
      Fail(op_tok, "expected a comparison, 'in' or 'and'/'or' after " +
                       (lhs.token ? Describe(*lhs.token) : x.text) + ", found " + Describe(op_tok));
    }
    const std::uint16_t t = Intern(LiteralOperand(Value::Of(Type::kBool, 1), "true"));
    Predicate p;
    p.kind = PredicateKind::kCompare;
    p.op = CmpOp::kEq;
    p.lhs = lhs.id;
    p.rhs = t;
    EmitPredicate(p, "cmp:0:" + std::to_string(lhs.id) + ":" + std::to_string(t));
  }

  void EmitPredicate(const Predicate& p, const std::string& key) {
    auto it = predicate_ids_.find(key);
    std::uint16_t id;
    if (it != predicate_ids_.end()) {
      id = it->second;
    } else {
      if (rs_->predicates.size() >= kMaxPredicates) Fail(Peek(), "too many distinct conditions");
      id = static_cast<std::uint16_t>(rs_->predicates.size());
      rs_->predicates.push_back(p);
      predicate_ids_.emplace(key, id);
      predicate_keys_.push_back(key);
    }
    Emit(OpCode::kPredicate, id);
  }

  // Turns a pending string literal into a literal of the other side's type (IP or BIN), or a
  // string.
  void Resolve(Parsed& x, const Parsed& other) {
    if (!x.string_literal) return;
    const Type want = other.string_literal ? Type::kString : rs_->operands[other.id].type;
    Value v;
    if (want == Type::kIp) {
      const auto ip = ParseIp(x.raw);
      if (!ip) Fail(*x.token, "'" + x.raw + "' is not an IP address");
      v = Value::Of(Type::kIp, static_cast<std::int64_t>(ip->high));
      v.b = ip->low;
    } else if (want == Type::kBin) {
      const auto bin = ParseBin(x.raw);
      if (!bin) Fail(*x.token, "'" + x.raw + "' is not a BIN (6 to 8 digits)");
      v = Value::Of(Type::kBin, *bin);
    } else if (want == Type::kCountry) {
      Fail(*x.token,
           "write a country as country:" + (x.raw.size() == 2 ? x.raw : std::string("CN")));
    } else {
      v = Value::Of(Type::kString, static_cast<std::int64_t>(HashString(x.raw)));
    }
    x.id = Intern(LiteralOperand(v, "\"" + x.raw + "\""));
    x.string_literal = false;
  }

  static Operand LiteralOperand(const Value& v, std::string text) {
    Operand o;
    o.kind = OperandKind::kLiteral;
    o.type = v.type;
    o.literal = v;
    o.available = kOnAll;
    o.text = std::move(text);
    return o;
  }

  std::uint16_t Intern(Operand o) {
    std::string key;
    switch (o.kind) {
      case OperandKind::kLiteral:
        key = "lit:" + std::to_string(static_cast<int>(o.type)) + ":" +
              std::to_string(o.literal.a) + ":" + std::to_string(o.literal.b) + ":" +
              std::to_string(o.literal.aux);
        break;
      case OperandKind::kAttr:
        key = "attr:" + std::string(Info(o.attr).name);
        break;
      case OperandKind::kAggregate:
        key = "agg:" + std::to_string(o.aggregate);
        break;
      case OperandKind::kAge:
        key = "age:" + std::to_string(o.lhs);
        break;
      case OperandKind::kElapsed:
        key = "elapsed:" + std::to_string(o.lhs) + ":" + std::to_string(o.rhs);
        break;
      case OperandKind::kPercentOf:
        key = "pct:" + std::to_string(o.lhs) + ":" + std::to_string(o.percent);
        break;
    }
    auto it = operand_ids_.find(key);
    if (it != operand_ids_.end()) return it->second;
    if (rs_->operands.size() >= kMaxOperands) Fail(Peek(), "too many distinct operands");
    const auto id = static_cast<std::uint16_t>(rs_->operands.size());
    rs_->operands.push_back(std::move(o));
    operand_ids_.emplace(std::move(key), id);
    return id;
  }

  void CheckAvailable(const Context& ctx, const Parsed& p) {
    const Operand& o = rs_->operands[p.id];
    const EventMask missing = ctx.events & ~o.available;
    if (missing) Fail(*p.token, o.text + " is not supplied on event " + EventNames(missing));
  }

  void NoteInput(const Context& ctx, std::uint16_t id) {
    if (ctx.inputs == nullptr || rs_->operands[id].kind == OperandKind::kLiteral) return;
    if (std::find(ctx.inputs->begin(), ctx.inputs->end(), id) == ctx.inputs->end())
      ctx.inputs->push_back(id);
  }

  Parsed OperandExpr(const Context& ctx) {
    Parsed p = OperandInner(ctx);
    if (!p.string_literal) {
      CheckAvailable(ctx, p);
      NoteInput(ctx, p.id);
    }
    return p;
  }

  Parsed OperandInner(const Context& ctx) {
    const Token& t = Next();
    Parsed p;
    p.token = &t;
    switch (t.kind) {
      case Tok::kInt:
        p.id = Intern(LiteralOperand(Value::Of(Type::kInt, t.value), std::string(t.text)));
        return p;
      case Tok::kDuration:
        p.id = Intern(LiteralOperand(Value::Of(Type::kDuration, t.value), std::string(t.text)));
        return p;
      case Tok::kDecimal:
        Fail(t, "a decimal number needs a currency, e.g. CNY " + std::string(t.text));
      case Tok::kString:
        p.string_literal = true;
        p.raw = t.str;
        return p;
      case Tok::kIdent:
        break;
      default:
        Fail(t, "expected a value, attribute or aggregate, found " + Describe(t));
    }
    const std::string_view w = t.text;
    if (w == "true" || w == "false") {
      p.id = Intern(LiteralOperand(Value::Of(Type::kBool, w == "true"), std::string(w)));
      return p;
    }
    if (w == "country" && Peek().kind == Tok::kColon) {
      Next();
      const Token& code = Expect(Tok::kIdent, "a two-letter country code");
      const auto packed = PackCountry(code.text);
      if (!packed) Fail(code, "a country is two upper-case letters, e.g. country:CN");
      p.id = Intern(
          LiteralOperand(Value::Of(Type::kCountry, *packed), "country:" + std::string(code.text)));
      return p;
    }
    if (PackCurrency(w) && (Peek().kind == Tok::kInt || Peek().kind == Tok::kDecimal)) {
      const Token& amount = Next();
      const auto minor = CurrencyMinorUnits(w);
      if (!minor) Fail(t, "unknown currency " + std::string(w));
      const auto v = ParseMinorUnits(amount.text, *minor);
      if (!v) {
        Fail(amount, std::string(w) + " has " + std::to_string(*minor) + " decimal places; " +
                         std::string(amount.text) + " is not an exact amount");
      }
      p.id = Intern(LiteralOperand(Value::Of(Type::kMoney, *v, *PackCurrency(w)),
                                   std::string(w) + " " + std::string(amount.text)));
      return p;
    }
    if ((w == "age" || w == "elapsed" || w == "percent_of") && Peek().kind == Tok::kLParen) {
      Next();
      Operand o;
      if (w == "age") {
        Parsed x = OperandExpr(Context{ctx.events, ctx.aggregates_allowed, nullptr});
        if (x.string_literal || rs_->operands[x.id].type != Type::kTime)
          Fail(*x.token, "age() needs a time");
        o.kind = OperandKind::kAge;
        o.type = Type::kDuration;
        o.lhs = x.id;
        o.available = rs_->operands[x.id].available;
        o.text = "age(" + rs_->operands[x.id].text + ")";
      } else if (w == "elapsed") {
        Parsed a = OperandExpr(Context{ctx.events, ctx.aggregates_allowed, nullptr});
        Expect(Tok::kComma, "','");
        Parsed b = OperandExpr(Context{ctx.events, ctx.aggregates_allowed, nullptr});
        for (const Parsed* x : {&a, &b}) {
          if (x->string_literal || rs_->operands[x->id].type != Type::kTime)
            Fail(*x->token, "elapsed() needs two times");
        }
        o.kind = OperandKind::kElapsed;
        o.type = Type::kDuration;
        o.lhs = a.id;
        o.rhs = b.id;
        o.available = rs_->operands[a.id].available & rs_->operands[b.id].available;
        o.text = "elapsed(" + rs_->operands[a.id].text + ", " + rs_->operands[b.id].text + ")";
      } else {
        Parsed x = OperandExpr(Context{ctx.events, ctx.aggregates_allowed, nullptr});
        const Type xt = x.string_literal ? Type::kString : rs_->operands[x.id].type;
        if (xt != Type::kMoney && xt != Type::kInt && xt != Type::kDuration) {
          Fail(*x.token, "percent_of() needs a money, int or duration");
        }
        Expect(Tok::kComma, "','");
        const Token& n = Expect(Tok::kInt, "a whole percentage");
        if (n.value < 0 || n.value > 100000) Fail(n, "a percentage is between 0 and 100000");
        o.kind = OperandKind::kPercentOf;
        o.type = xt;
        o.lhs = x.id;
        o.percent = n.value;
        o.available = rs_->operands[x.id].available;
        o.text = "percent_of(" + rs_->operands[x.id].text + ", " + std::string(n.text) + ")";
      }
      Expect(Tok::kRParen, "')'");
      p.id = Intern(std::move(o));
      return p;
    }
    if (const int agg = rs_->AggregateIndex(w); agg >= 0) {
      if (!ctx.aggregates_allowed) Fail(t, "an aggregate cannot be used in a 'where' filter");
      const AggregateDef& def = rs_->aggregates[agg];
      Operand o;
      o.kind = OperandKind::kAggregate;
      o.type = def.type;
      o.aggregate = static_cast<std::uint16_t>(agg);
      o.available = Info(def.by).events;
      o.text = def.name;
      p.id = Intern(std::move(o));
      return p;
    }
    const auto attr = AttrFromName(w);
    if (!attr) {
      Fail(t,
           "unknown attribute or aggregate '" + std::string(w) + "'" +
               (w.find('.') == std::string_view::npos ? " (aggregates must be declared before use)"
                                                      : ""));
    }
    Operand o;
    o.kind = OperandKind::kAttr;
    o.type = Info(*attr).type;
    o.attr = *attr;
    o.available = Info(*attr).events;
    o.text = std::string(w);
    p.id = Intern(std::move(o));
    return p;
  }

  // --- finishing
  // ------------------------------------------------------------------------------------------
  void Finish() {
    if (rs_->name.empty()) ErrorAt(1, 1, "missing 'ruleset NAME' statement");
    if (score_rule_ != nullptr && !rs_->has_thresholds) {
      ErrorAt(score_rule_->line, score_rule_->column,
              "score rules need a 'thresholds review N block M' statement");
    }
    if (!errors_.errors.empty()) return;
    for (int e = 0; e < kEventTypeCount; ++e) {
      const EventMask mask = MaskOf(static_cast<EventType>(e));
      EventPlan& plan = rs_->plans[e];
      std::vector<bool> preds(rs_->predicates.size());
      std::vector<bool> ops(rs_->operands.size());
      for (std::size_t r = 0; r < rs_->rules.size(); ++r) {
        const Rule& rule = rs_->rules[r];
        if (!(rule.events & mask)) continue;
        plan.rules.push_back(static_cast<std::uint16_t>(r));
        for (std::uint32_t i = rule.code_begin; i < rule.code_end; ++i) {
          if (rs_->code[i].op == OpCode::kPredicate) preds[rs_->code[i].arg] = true;
        }
      }
      for (std::size_t i = 0; i < preds.size(); ++i) {
        if (!preds[i]) continue;
        plan.predicates.push_back(static_cast<std::uint16_t>(i));
        const Predicate& p = rs_->predicates[i];
        MarkOperand(p.lhs, ops);
        if (p.kind == PredicateKind::kCompare || p.kind == PredicateKind::kMultipleOf)
          MarkOperand(p.rhs, ops);
      }
      for (std::size_t i = 0; i < ops.size(); ++i) {
        if (ops[i] && rs_->operands[i].kind != OperandKind::kLiteral) {
          plan.operands.push_back(static_cast<std::uint16_t>(i));
        }
      }
    }
    rs_->file = std::string(file_);
    rs_->version = keys::ToHex(keys::Sha256(source_));
  }

  void MarkOperand(std::uint16_t id, std::vector<bool>& ops) {
    if (ops[id]) return;
    ops[id] = true;
    const Operand& o = rs_->operands[id];
    if (o.kind == OperandKind::kAge || o.kind == OperandKind::kPercentOf ||
        o.kind == OperandKind::kElapsed) {
      MarkOperand(o.lhs, ops);
    }
    if (o.kind == OperandKind::kElapsed) MarkOperand(o.rhs, ops);
  }

  std::string_view source_;
  std::string_view file_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  CompileErrors errors_;
  std::shared_ptr<CompiledRuleset> rs_ = std::make_shared<CompiledRuleset>();
  std::map<std::string, std::uint16_t> operand_ids_;
  std::map<std::string, std::uint16_t> predicate_ids_;
  std::vector<std::string> predicate_keys_;
  bool seen_name_ = false;
  const Token* score_rule_ = nullptr;
};

}  // namespace

Result<std::shared_ptr<const CompiledRuleset>, CompileErrors> Compile(std::string_view source,
                                                                      std::string_view file) {
  return Compiler(source, file).Run();
}

}  // namespace paygate::risk
