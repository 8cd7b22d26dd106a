// Java's view of what the gateway issues, run by tests/e2e/interop.rs in source-file mode
// (`java Check.java MODE ...`, Java 11+). Prints one line per fact; exits 0, or 2 when a
// certification path is refused.
//
//   pkix ROOT.pem CHAIN.pem   PKIX validation with revocation on: OCSP first (ocsp.enable),
//                             CRL distribution points as fallback (needs
//                             -Dcom.sun.security.enableCRLDP=true on the command line).
//                             CHAIN.pem: the leaf first, then the issuing CA.
//   keystore TOKEN.p12 PIN    The PKCS#12 as Java's KeyStore sees it (aliases in file order,
//                             chain lengths) and the alias SunX509 picks for TLS client auth.

import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.Security;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.X509KeyManager;

public class Check {
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "pkix" -> pkix(args[1], args[2]);
            case "keystore" -> keystore(args[1], args[2]);
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static void pkix(String rootFile, String chainFile) throws Exception {
        Security.setProperty("ocsp.enable", "true");
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate root;
        try (FileInputStream in = new FileInputStream(rootFile)) {
            root = (X509Certificate) cf.generateCertificate(in);
        }
        List<X509Certificate> chain = new ArrayList<>();
        try (FileInputStream in = new FileInputStream(chainFile)) {
            cf.generateCertificates(in).forEach(c -> chain.add((X509Certificate) c));
        }
        CertPath path = cf.generateCertPath(chain);
        PKIXParameters params = new PKIXParameters(Collections.singleton(new TrustAnchor(root, null)));
        params.setRevocationEnabled(true);
        try {
            CertPathValidator.getInstance("PKIX").validate(path, params);
            System.out.println("valid");
        } catch (CertPathValidatorException e) {
            System.out.println("invalid: index=" + e.getIndex() + " reason=" + e.getReason() + " " + e.getMessage());
            System.exit(2);
        }
    }

    static void keystore(String file, String pin) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(file)) {
            ks.load(in, pin.toCharArray());
        }
        for (String alias : Collections.list(ks.aliases())) {
            System.out.println("alias: " + alias + " key=" + ks.isKeyEntry(alias)
                    + " chain=" + (ks.getCertificateChain(alias) == null ? 0 : ks.getCertificateChain(alias).length));
        }
        // SunX509 is the JDK's default (ssl.KeyManagerFactory.algorithm); PKIX ("NewSunX509")
        // checks keyUsage and extendedKeyUsage.
        for (String algorithm : new String[] {"SunX509", "PKIX"}) {
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(algorithm);
            kmf.init(ks, pin.toCharArray());
            X509KeyManager km = (X509KeyManager) kmf.getKeyManagers()[0];
            String chosen = km.chooseClientAlias(new String[] {"RSA", "EC", "EdDSA"}, null, null);
            X509Certificate leaf = km.getCertificateChain(chosen)[0];
            List<String> eku = leaf.getExtendedKeyUsage();
            System.out.println(algorithm + ": " + chosen + " clientAuth="
                    + (eku != null && eku.contains("1.3.6.1.5.5.7.3.2")));
        }
    }
}
