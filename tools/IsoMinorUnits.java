/*
 * Helper of tools/gen_currencies.sh (run by developers, never by the build).
 *
 * Reads iso-codes' iso_4217.json (path in args[0]) and prints one line per
 * active currency, sorted by code:
 *
 *     CODE <TAB> DIGITS <TAB> NAME
 *
 * DIGITS is java.util.Currency.getDefaultFractionDigits() (-1 where ISO
 * says "N.A."), or "?" when this JDK does not know the code.  NAME is the
 * iso-codes name, JSON-unescaped, UTF-8.  The JSON is the flat, fixed
 * layout iso-codes ships ({"4217": [ {"alpha_3": ..., "name": ...,
 * "numeric": ...}, ... ]}), so a small regex reader is enough; anything
 * unexpected is a hard error rather than a silent skip.
 */
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Currency;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class IsoMinorUnits {
    private static final Pattern OBJECT = Pattern.compile("\\{([^{}]*)\\}");
    private static final String STR = "\"((?:[^\"\\\\]|\\\\.)*)\"";

    private static String field(String obj, String key) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*" + STR).matcher(obj);
        return m.find() ? unescape(m.group(1)) : null;
    }

    private static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\') { b.append(c); continue; }
            char e = s.charAt(++i);
            switch (e) {
                case '"': case '\\': case '/': b.append(e); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'n': b.append('\n'); break;
                case 'r': b.append('\r'); break;
                case 't': b.append('\t'); break;
                case 'u': b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16)); i += 4; break;
                default: throw new IllegalArgumentException("bad JSON escape \\" + e);
            }
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        String json = new String(Files.readAllBytes(Paths.get(args[0])), StandardCharsets.UTF_8);
        Map<String, String> names = new TreeMap<>();
        Matcher m = OBJECT.matcher(json);
        while (m.find()) {
            String obj = m.group(1);
            if (obj.contains("\"withdrawal_date\""))
                continue;               /* historic entry (not in current files) */
            String code = field(obj, "alpha_3");
            String name = field(obj, "name");
            if (code == null || name == null || !code.matches("[A-Z]{3}"))
                throw new IllegalStateException("unexpected entry: {" + obj + "}");
            if (name.indexOf('\t') >= 0 || name.indexOf('\n') >= 0)
                throw new IllegalStateException("control character in name of " + code);
            if (names.put(code, name) != null)
                throw new IllegalStateException("duplicate code " + code);
        }
        if (names.isEmpty())
            throw new IllegalStateException("no currencies found in " + args[0]);
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        for (Map.Entry<String, String> e : names.entrySet()) {
            String digits;
            try {
                digits = Integer.toString(Currency.getInstance(e.getKey()).getDefaultFractionDigits());
            } catch (IllegalArgumentException ex) {
                digits = "?";
            }
            out.print(e.getKey() + "\t" + digits + "\t" + e.getValue() + "\n");
        }
    }
}
