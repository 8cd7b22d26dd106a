// BouncyCastle's CMS (Debian's libbcpkix-java) opens an encrypted server-generated key, as a
// Java EST client would: run by tests/e2e/est/encrypted.rs as
// `java -cp <bc jars> EstDecrypt.java <key part DER> <cacerts PEM> <out PKCS#8 DER>
//  (cert <recipient cert PEM> <recipient key PEM> | kek <key hex> <identifier hex>)`.
// It checks the SignedData's signature and that its signer is a `cacerts` certificate (the
// issuing CA) signed by another (the root); decrypts the EnvelopedData for the recipient; and writes
// the one key of the AsymmetricKeyPackage. One line per step goes to standard output.

import java.io.FileOutputStream;
import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.PrivateKey;
import java.security.Security;
import java.util.ArrayList;
import java.util.List;

import javax.crypto.spec.SecretKeySpec;

import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSEnvelopedData;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.KEKRecipientInformation;
import org.bouncycastle.cms.KeyAgreeRecipientInformation;
import org.bouncycastle.cms.KeyTransRecipientInformation;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.cms.jcajce.JceKEKEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyAgreeEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.util.encoders.Hex;

public class EstDecrypt {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        CMSSignedData signed = new CMSSignedData(Files.readAllBytes(Paths.get(args[0])));
        List<X509CertificateHolder> cacerts = new ArrayList<>();
        try (PEMParser pem = new PEMParser(new FileReader(args[1]))) {
            for (Object o = pem.readObject(); o != null; o = pem.readObject()) {
                cacerts.add((X509CertificateHolder) o);
            }
        }
        SignerInformation signer = signed.getSignerInfos().getSigners().iterator().next();
        X509CertificateHolder issuing = null;
        for (X509CertificateHolder c : cacerts) {
            if (signer.getSID().match(c)) {
                issuing = c;
            }
        }
        if (issuing == null) {
            throw new IllegalStateException("the signer is not a cacerts certificate");
        }
        if (!signer.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(issuing))) {
            throw new IllegalStateException("the signature does not verify");
        }
        X509CertificateHolder parent = null;
        for (X509CertificateHolder c : cacerts) {
            if (c != issuing && c.getSubject().equals(issuing.getIssuer())) {
                parent = c;
            }
        }
        if (parent == null
            || !issuing.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC").build(parent))) {
            throw new IllegalStateException("the signer is not signed by another cacerts certificate");
        }
        System.out.println("verified " + signed.getSignedContentTypeOID());

        // The signed content is the EnvelopedData itself.
        byte[] content = (byte[]) signed.getSignedContent().getContent();
        CMSEnvelopedData enveloped = new CMSEnvelopedData(new ContentInfo(
            CMSObjectIdentifiers.envelopedData, ASN1Primitive.fromByteArray(content)));
        RecipientInformation recipient = enveloped.getRecipientInfos().getRecipients().iterator().next();
        byte[] pkg;
        if (args[3].equals("kek")) {
            if (!(recipient instanceof KEKRecipientInformation)) {
                throw new IllegalStateException("not a KEK recipient");
            }
            if (!recipient.getRID().match(Hex.decode(args[5]))) {
                throw new IllegalStateException("another key identifier");
            }
            pkg = recipient.getContent(
                new JceKEKEnvelopedRecipient(new SecretKeySpec(Hex.decode(args[4]), "AES")).setProvider("BC"));
        } else {
            X509CertificateHolder cert;
            try (PEMParser pem = new PEMParser(new FileReader(args[4]))) {
                cert = (X509CertificateHolder) pem.readObject();
            }
            if (!recipient.getRID().match(cert)) {
                throw new IllegalStateException("the recipient is not the certificate");
            }
            PrivateKey key;
            try (PEMParser pem = new PEMParser(new FileReader(args[5]))) {
                key = new JcaPEMKeyConverter().setProvider("BC").getPrivateKey((PrivateKeyInfo) pem.readObject());
            }
            if (recipient instanceof KeyTransRecipientInformation) {
                pkg = recipient.getContent(new JceKeyTransEnvelopedRecipient(key).setProvider("BC"));
            } else if (recipient instanceof KeyAgreeRecipientInformation) {
                pkg = recipient.getContent(new JceKeyAgreeEnvelopedRecipient(key).setProvider("BC"));
            } else {
                throw new IllegalStateException("not a key transport or key agreement recipient");
            }
        }
        System.out.println("decrypted " + recipient.getKeyEncryptionAlgOID()
            + " content " + enveloped.getEncryptionAlgOID());
        ASN1Sequence keys = ASN1Sequence.getInstance(pkg);
        if (keys.size() != 1) {
            throw new IllegalStateException("the key package holds " + keys.size() + " keys");
        }
        try (FileOutputStream out = new FileOutputStream(args[2])) {
            out.write(PrivateKeyInfo.getInstance(keys.getObjectAt(0)).getEncoded());
        }
        System.out.println("key written");
    }
}
