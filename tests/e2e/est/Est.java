// BouncyCastle's EST client (org.bouncycastle.est, Debian's libbcpkix-java) against the gateway,
// run by tests/e2e/est.rs as `java -cp <bc jars> Est.java <host:port> <label> <trust.pem>
// <user> <secret> <out dir>`. It gets cacerts and csrattrs, enrols a CSR (HTTP Basic), gets a
// server-generated key and certificate, and re-enrols over mTLS with the certificate it got;
// everything it receives is written to <out dir> as PEM for openssl to check, and one line per
// step goes to standard output.

import java.io.FileInputStream;
import java.io.FileWriter;
import java.io.StringWriter;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;

import javax.net.ssl.KeyManagerFactory;
import javax.security.auth.x500.X500Principal;

import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.CSRRequestResponse;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.HttpAuth;
import org.bouncycastle.est.jcajce.JcaJceUtils;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public class Est {
    static String out;

    public static void main(String[] args) throws Exception {
        String server = args[0], label = args[1], trust = args[2], user = args[3], secret = args[4];
        out = args[5];
        // The certificate-path trust manager of the EST client asks for the BC provider.
        java.security.Security.addProvider(new org.bouncycastle.jce.provider.BouncyCastleProvider());
        X509Certificate anchor = (X509Certificate) CertificateFactory.getInstance("X.509")
            .generateCertificate(new FileInputStream(trust));
        Set<TrustAnchor> anchors = new HashSet<>(Collections.singleton(new TrustAnchor(anchor, null)));
        ESTService est = new JsseESTServiceBuilder(server, JcaJceUtils.getCertPathTrustManager(anchors, null))
            .withLabel(label).build();

        CACertsResponse ca = est.getCACerts();
        X509CertificateHolder[] caCerts = ESTService.storeToArray(ca.getCertificateStore());
        write("cacerts.pem", (Object[]) caCerts);
        System.out.println("cacerts " + caCerts.length);

        CSRRequestResponse attrs = est.getCSRAttributes();
        System.out.println("csrattrs " + attrs.getAttributesResponse().getRequirements());

        HttpAuth auth = new HttpAuth(user, secret.toCharArray());
        KeyPair enrolled = ecKey();
        EnrollmentResponse first = est.simpleEnroll(false, csr("dev-bc-1", enrolled), auth);
        X509CertificateHolder cert = single(first);
        write("enrolled.pem", cert);
        writeKey("enrolled.key", enrolled.getPrivate());
        System.out.println("simpleenroll " + cert.getSerialNumber().toString(16));

        EnrollmentResponse generated = est.simpleEnrollWithServersideCreation(csr("dev-bc-2", ecKey()), auth);
        X509CertificateHolder serverCert = single(generated);
        PrivateKey serverKey = KeyFactory.getInstance("EC")
            .generatePrivate(new PKCS8EncodedKeySpec(generated.getPrivateKeyInfo().getEncoded()));
        write("serverkeygen.pem", serverCert);
        writeKey("serverkeygen.key", serverKey);
        System.out.println("serverkeygen " + serverCert.getSerialNumber().toString(16));

        // Wrong secret: refused with 401 (BouncyCastle retries once with the credentials).
        try {
            est.simpleEnroll(false, csr("dev-bc-3", ecKey()), new HttpAuth(user, "wrong-secret-value".toCharArray()));
            System.out.println("wrong secret accepted");
        } catch (ESTException e) {
            System.out.println("wrong secret refused " + e.getStatusCode());
        } catch (java.io.IOException e) {
            System.out.println("wrong secret refused: " + e.getMessage());
        }

        // Re-enrolment over mTLS with the certificate just enrolled: same subject, new key.
        X509Certificate jca = new JcaX509CertificateConverter().getCertificate(cert);
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        java.security.cert.Certificate[] chain = {jca};
        store.setKeyEntry("device", enrolled.getPrivate(), "pw".toCharArray(), chain);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(store, "pw".toCharArray());
        ESTService mtls = new JsseESTServiceBuilder(server, JcaJceUtils.getCertPathTrustManager(anchors, null))
            .withKeyManagers(kmf.getKeyManagers()).withLabel(label).build();
        KeyPair renewedKey = ecKey();
        EnrollmentResponse renewed = mtls.simpleEnroll(true, csr("dev-bc-1", renewedKey), null);
        X509CertificateHolder renewedCert = single(renewed);
        write("reenrolled.pem", renewedCert);
        writeKey("reenrolled.key", renewedKey.getPrivate());
        System.out.println("simplereenroll " + renewedCert.getSerialNumber().toString(16));
    }

    static KeyPair ecKey() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    /// A CSR for CN=<cn> with the DNS name <cn>.devices.example, signed with SHA256withECDSA.
    static PKCS10CertificationRequest csr(String cn, KeyPair key) throws Exception {
        ExtensionsGenerator extensions = new ExtensionsGenerator();
        extensions.addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, cn + ".devices.example")));
        return new JcaPKCS10CertificationRequestBuilder(new X500Principal("CN=" + cn), key.getPublic())
            .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
            .build(new JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate()));
    }

    static X509CertificateHolder single(EnrollmentResponse response) {
        X509CertificateHolder[] certs = ESTService.storeToArray(response.getStore());
        if (certs.length != 1) {
            throw new IllegalStateException("expected one certificate, got " + certs.length);
        }
        return certs[0];
    }

    static void write(String name, Object... objects) throws Exception {
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(out + "/" + name))) {
            for (Object o : objects) {
                w.writeObject(o);
            }
        }
    }

    static void writeKey(String name, PrivateKey key) throws Exception {
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(out + "/" + name))) {
            w.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(key, null));
        }
    }
}
